from approval.app import create_app
from approval.settings import ApprovalSettings
from shared.cli import service_main

service_main(package="approval", load_settings=ApprovalSettings, create_app=create_app)

from shared.cli import service_main

from approval.app import create_app
from approval.settings import ApprovalSettings

service_main(package="approval", load_settings=ApprovalSettings, create_app=create_app)

from reference.app import create_app
from reference.settings import ReferenceSettings
from shared.cli import service_main

service_main(package="reference", load_settings=ReferenceSettings, create_app=create_app)

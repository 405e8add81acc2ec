from misa_sync.app import create_app
from misa_sync.settings import MisaSyncSettings
from shared.cli import service_main

service_main(package="misa_sync", load_settings=MisaSyncSettings, create_app=create_app)

from shared.cli import service_main

from misa_sync.app import create_app
from misa_sync.settings import MisaSyncSettings

service_main(package="misa_sync", load_settings=MisaSyncSettings, create_app=create_app)

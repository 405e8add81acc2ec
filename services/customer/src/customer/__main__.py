from customer.app import create_app
from customer.settings import CustomerSettings
from shared.cli import service_main

service_main(package="customer", load_settings=CustomerSettings, create_app=create_app)

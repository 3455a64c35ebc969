import os

OPENHUMANS_OH_BASE_URL = os.getenv("OPENHUMANS_OH_BASE_URL", "https://www.openhumans.org")

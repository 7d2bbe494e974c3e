"""A payload: writes the canary when imported."""
import os
from pathlib import Path

Path(os.environ["GRAPHSPEC_CANARY"]).write_text("executed")

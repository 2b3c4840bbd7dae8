"""medvision_server: the reference service over the public medvision Python package.
Not for diagnostic use."""
from .app import create_app
from .settings import Settings

__all__ = ["create_app", "Settings"]

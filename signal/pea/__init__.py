"""pea: peer-to-peer file sharing between browsers; this package is its signalling node."""

__version__ = "0.1.0"

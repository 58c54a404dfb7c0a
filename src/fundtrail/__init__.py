"""FundTrail: milestone escrows and a donation registry, operated from Python."""

__version__ = "0.1.0"

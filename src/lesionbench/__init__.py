"""lesionbench: does Dice hide boundary-quality differences on small lesions?"""

__version__ = "0.1.0"

"""seqbench: is an LSTM or a GRU better for your sequence data, by how much, at what cost?"""

__version__ = "0.1.0"

"""Data and weights: the Dataset, WeightImporter and WeightWriter base classes, how named arrays map onto
a network, where weights files come from, and what ships inside the package.
"""

"""The restricted Boltzmann machine: the model and CD-k (``model``) and its trainer (``trainer``)."""

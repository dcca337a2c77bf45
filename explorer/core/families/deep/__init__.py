"""The deep MLP: layerwise pretraining and fine-tuning (``trainer``) and the four starts compared (``compare``)."""

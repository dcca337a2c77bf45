"""Autoencoders and denoising autoencoders: model, config and trainer (``trainer``)."""

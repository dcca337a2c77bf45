"""Recurrent networks (LSTM and vanilla RNN) on sequence tasks: config and trainer (``trainer``)."""

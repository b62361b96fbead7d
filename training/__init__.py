"""The trainer: (image, caption) data to a 5-channel Color Stroke + Canny ControlNet (``python training/train.py``)."""

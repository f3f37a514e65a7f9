"""Containerized KFP components of the continuous-training pipeline.

Each step lives in its own folder (``component.py`` for the KFP interface, a
logic module with plain functions, ``__main__.py`` for the program its image
runs). Only ``component.py`` files import KFP; everything else runs in the
step's own runtime image.
"""

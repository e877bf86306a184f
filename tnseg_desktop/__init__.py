"""tnseg-desktop: thyroid nodule segmentation in ultrasound cine loops."""

__version__ = "0.1.0"

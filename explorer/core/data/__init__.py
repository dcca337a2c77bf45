"""Data sets: the bundled digits, bars, MNIST/Fashion-MNIST IDX files (``datasets``), the user's image
folders and mask folders (``imagefolder``, ``scenes``), generated scenes for segmentation and
sequence tasks for recurrent networks (``sequences``). Every reader validates what it reads."""

"""ktan-det: KTAN distillation for MMDetection 3.x."""
from .version import __version__

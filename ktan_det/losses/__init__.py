from .adversarial import GAN_TYPES, AdversarialLoss
from .feature_imitation import FeatureImitationLoss, foreground_masks, standardize
from .soft_label import SoftLabelLoss

__all__ = ['AdversarialLoss', 'FeatureImitationLoss', 'SoftLabelLoss', 'GAN_TYPES',
           'foreground_masks', 'standardize']

from .config import add_common_args, load_config, repoint_data_root

__all__ = ['add_common_args', 'load_config', 'repoint_data_root']

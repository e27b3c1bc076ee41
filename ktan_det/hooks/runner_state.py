"""What ktan-det's hooks ask of the runner: its KTAN distiller."""
from ..models import KTANDistiller
from ..utils.wrappers import unwrap


def ktan_model(runner):
    """The KTANDistiller inside ``runner.model``, with a clear error if it is something else."""
    model = unwrap(runner.model)
    if not isinstance(model, KTANDistiller):
        raise TypeError(f'this hook needs a KTANDistiller model, got {type(model).__name__}')
    return model

"""Typed errors raised while reading model folders; callers show the message as one line."""


class ModelError(ValueError):
    """A model folder, config or weight file that cannot be used."""


class ConfigError(ModelError):
    """A config.json that is missing keys, of an unknown type, or absurd."""


class WeightsError(ModelError):
    """Weights that are missing, unexpected, mis-shaped or in a refused format."""


class DeviceError(ModelError):
    """MLX cannot compute on its device (e.g. Metal without its mlx.metallib); the weights may be fine."""


import mmpretrain.visualization  # noqa: F401,E402 (UniversalVisualizer)

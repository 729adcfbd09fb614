# Nothing of our own yet; registers MMPretrain's visualizers
# (UniversalVisualizer) for configs whose default scope is mmssl_ext.
import mmpretrain.visualization  # noqa: F401

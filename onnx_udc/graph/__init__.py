"""The graph pass: which weights, how each is consumed, and the rewrite.

    layers.analyze(model)      how every weight is read (role, consumer, axis order)
    select.select(model)       what to do with each weight, and why the others stay
    rewrite.replace_weights    weights -> blob initializers + decode nodes
    rewrite.decompress_model   decode nodes -> dense initializers
    modelio                    loading and atomic saving of models
    inspect                    the per-tensor table of a (compressed) model
"""

from .layers import Consumer, LayerUse, analyze, axis_order, iter_graphs, layer_type
from .rewrite import blob_bytes, decode_node, decode_nodes, decompress_model, has_decode_nodes, replace_weights
from .select import Action, Candidate, Source, select, select_sources, weight_sources

__all__ = [
    "Action", "Candidate", "Consumer", "LayerUse", "Source", "analyze", "axis_order", "blob_bytes", "decode_node",
    "decode_nodes", "decompress_model", "has_decode_nodes", "iter_graphs", "layer_type", "replace_weights", "select",
    "select_sources", "weight_sources",
]

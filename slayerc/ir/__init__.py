"""The slayerc SNN graph IR: ops, graphs, verification, the ``.sir`` text form, analyses."""

from slayerc.ir import ops
from slayerc.ir.core import FACTS, OPS, Graph, GraphBuilder, Loc, Op, ParamRef
from slayerc.ir.parser import parse
from slayerc.ir.printer import print_graph
from slayerc.ir.serialize import load, save
from slayerc.ir.verify import verify

__all__ = ["FACTS", "OPS", "Graph", "GraphBuilder", "Loc", "Op", "ParamRef", "load", "ops",
           "parse", "print_graph", "save", "verify"]

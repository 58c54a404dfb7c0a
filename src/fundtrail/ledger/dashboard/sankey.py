"""The layout of a funds-flow (Sankey) diagram: node boxes in columns, links as bands.

Each node is as tall as the larger of its inflow and outflow, on one scale for the whole
diagram, so band widths compare across columns. The layout is computed here so the site
needs no charting script; `html` writes it out as SVG.
"""

from dataclasses import dataclass

from fundtrail.ledger.dashboard.data import FundsFlow

WIDTH = 1000
"""Width of the drawing, in SVG user units."""
LABEL_SPACE = 230
"""Room at the right for the labels of the last column, which sit right of their nodes."""
NODE_WIDTH = 14
NODE_GAP = 30
"""Vertical space between two nodes of a column, enough for a two-line label."""
MIN_NODE_HEIGHT = 3
"""Height of the smallest node, so a tiny amount stays visible and clickable."""
COLUMN_HEIGHT = 420
"""Height available to the nodes of the fullest column, gaps included."""
MARGIN = 8


@dataclass(frozen=True)
class NodeBox:
    key: str
    label: str
    kind: str
    href: str | None
    x: float
    y: float
    height: float
    amount: int


@dataclass(frozen=True)
class LinkBand:
    source: str
    target: str
    kind: str
    amount: int
    path: str
    """SVG path data of the band: the curve along its top edge, and back along its bottom."""


@dataclass(frozen=True)
class SankeyLayout:
    width: float
    height: float
    nodes: list[NodeBox]
    links: list[LinkBand]


def layout(flow: FundsFlow) -> SankeyLayout:
    """Place the nodes and bands of `flow`."""
    inflow: dict[str, int] = {node.key: 0 for node in flow.nodes}
    outflow: dict[str, int] = {node.key: 0 for node in flow.nodes}
    for link in flow.links:
        outflow[link.source] += link.amount
        inflow[link.target] += link.amount
    amount = {key: max(inflow[key], outflow[key]) for key in inflow}

    columns: dict[int, list] = {}
    for node in flow.nodes:
        columns.setdefault(node.column, []).append(node)
    columns = dict(sorted(columns.items()))
    last_column = max(columns, default=0)
    scale = min(
        (
            (COLUMN_HEIGHT - NODE_GAP * (len(nodes) - 1)) / max(1, sum(amount[node.key] for node in nodes))
            for nodes in columns.values()
        ),
        default=1.0,
    )
    # The minimum node height can make a column of many small nodes taller than
    # COLUMN_HEIGHT. The drawing then grows with it, so nodes never overlap.
    boxes: dict[str, NodeBox] = {}
    height = 0.0
    for column, nodes in columns.items():
        x = MARGIN + (WIDTH - LABEL_SPACE - 2 * MARGIN - NODE_WIDTH) * (column / max(1, last_column))
        y = MARGIN
        for node in _by_sources(nodes, flow.links, boxes):
            node_height = max(MIN_NODE_HEIGHT, amount[node.key] * scale)
            boxes[node.key] = NodeBox(node.key, node.label, node.kind, node.href, x, y, node_height,
                                      amount[node.key])
            y += node_height + NODE_GAP
        height = max(height, y - NODE_GAP + MARGIN)

    # Bands leave a node in the order of their targets from top to bottom, and enter a node in
    # the order of their sources, so that bands cross as little as this simple layout allows.
    source_offset = {key: 0.0 for key in boxes}
    target_offset = {key: 0.0 for key in boxes}
    by_target_y = sorted(flow.links, key=lambda link: (boxes[link.target].y, boxes[link.source].y))
    starts = {}
    for link in by_target_y:
        starts[id(link)] = source_offset[link.source]
        source_offset[link.source] += _band(link.amount, scale, boxes[link.source])
    bands = []
    for link in sorted(flow.links, key=lambda link: (boxes[link.source].y, boxes[link.target].y)):
        source, target = boxes[link.source], boxes[link.target]
        thickness = _band(link.amount, scale, source)
        top_start = source.y + starts[id(link)]
        top_end = target.y + target_offset[link.target]
        target_offset[link.target] += thickness
        bands.append(
            LinkBand(link.source, link.target, link.kind, link.amount,
                     _band_path(source.x + NODE_WIDTH, top_start, target.x, top_end, thickness))
        )
    return SankeyLayout(WIDTH, max(height, 2 * MARGIN + MIN_NODE_HEIGHT), list(boxes.values()), bands)


def _by_sources(nodes: list, links: list, placed: dict[str, NodeBox]) -> list:
    """Order a column's nodes by the mean height of their sources, weighted by amount.

    One left-to-right pass of this barycentre rule keeps most bands from crossing. Nodes
    without placed sources keep their given order, ahead of the others.
    """
    def centre(index_and_node):
        index, node = index_and_node
        weights = [
            (placed[link.source].y + placed[link.source].height / 2, link.amount)
            for link in links
            if link.target == node.key and link.source in placed
        ]
        total = sum(amount for _, amount in weights)
        if not total:
            return (0, index, 0.0)
        # Rounded, so that nodes fed from the same place tie and keep their given order.
        return (1, round(sum(y * amount for y, amount in weights) / total, 1), index)

    return [node for _, node in sorted(enumerate(nodes), key=centre)]


def _band(amount: int, scale: float, node: NodeBox) -> float:
    # A node raised to the minimum height shares it among its bands in proportion.
    if node.amount == 0:
        return 0.0
    return amount * scale if node.height > MIN_NODE_HEIGHT else node.height * amount / node.amount


def _band_path(x0: float, y0: float, x1: float, y1: float, thickness: float) -> str:
    middle = (x0 + x1) / 2
    return (
        f"M{x0:.1f},{y0:.1f}C{middle:.1f},{y0:.1f} {middle:.1f},{y1:.1f} {x1:.1f},{y1:.1f}"
        f"L{x1:.1f},{y1 + thickness:.1f}"
        f"C{middle:.1f},{y1 + thickness:.1f} {middle:.1f},{y0 + thickness:.1f} {x0:.1f},{y0 + thickness:.1f}Z"
    )

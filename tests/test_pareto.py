"""The Pareto front (analysis/pareto.py) against fronts worked out by hand, and the scatter chart that
draws it (render/charts.py): valid SVG, every point and the front's corners where the axes put them."""
from __future__ import annotations

import xml.etree.ElementTree as ET

from archdsl.analysis.pareto import pareto_front
from archdsl.render.charts import COLOURS, Point, Series, scatter_chart

SVG = "{http://www.w3.org/2000/svg}"


def front_of(points):
    return pareto_front(points, cost=lambda p: p[0], quality=lambda p: p[1])


def test_front_by_hand():
    # (params, accuracy): b beats a (cheaper and better); d is dominated by c; e costs most but is best
    a, b, c, d, e = (50, 0.80), (40, 0.82), (60, 0.85), (70, 0.84), (90, 0.88)
    assert front_of([a, b, c, d, e]) == [b, c, e]
    assert front_of([]) == []
    assert front_of([a]) == [a]
    # equal cost: the better one; equal quality: the cheaper one; exact ties: the first given
    assert front_of([(10, 0.5), (10, 0.6)]) == [(10, 0.6)]
    assert front_of([(20, 0.6), (10, 0.6)]) == [(10, 0.6)]
    first, second = [10, 0.6], [10, 0.6]
    assert front_of([first, second])[0] is first


def test_front_brute_force_agrees():
    import random
    rng = random.Random(7)
    for _ in range(200):
        pts = [(rng.randint(0, 20), rng.randint(0, 20)) for _ in range(rng.randint(1, 15))]
        dominated = {i for i, p in enumerate(pts) for j, q in enumerate(pts)
                     if q[0] <= p[0] and q[1] >= p[1] and q != p}
        expected = sorted({pts[i] for i in range(len(pts)) if i not in dominated})
        assert sorted(set(front_of(pts))) == expected


def test_scatter_places_points_and_front():
    trials = Series("trials", [Point(40_000, 0.80, "w=32"), Point(80_000, 0.90, "w=64 <b>")], COLOURS[0])
    hand = Series("hand-found", [Point(60_000, 0.85, "record")], COLOURS[1])
    svg = str(scatter_chart([trials, hand], title="accuracy vs params", x_label="params", y_label="val accuracy",
                            front=[(40_000, 0.80), (80_000, 0.90)]))
    root = ET.fromstring(svg)  # well-formed: the label's <b> is escaped
    circles = root.findall(f"{SVG}circle")
    assert [c.find(f"{SVG}title").text.split(":")[0] for c in circles] == ["w=32", "w=64 <b>", "record"]
    xs = [float(c.get("cx")) for c in circles]
    ys = [float(c.get("cy")) for c in circles]
    assert xs[0] < xs[2] < xs[1] and ys[0] > ys[2] > ys[1]       # right is more params, up is more accuracy
    assert abs((xs[2] - xs[0]) - (xs[1] - xs[2])) < 0.2          # 60k halfway between 40k and 80k
    [path] = root.findall(f"{SVG}path")
    corners = [tuple(map(float, step[1:].split(","))) for step in path.get("d").split()]
    # a step: right along 0.80's level to 80k, then up to 0.90
    assert corners == [(xs[0], ys[0]), (xs[1], ys[0]), (xs[1], ys[1])]


def test_tick_labels_at_the_edges_stay_inside_the_picture():
    """A wide x label at the last tick (250,000 MACs at the plot's right end) once ran past the SVG's edge."""
    points = Series("trials", [Point(117_152, 0.03, "a"), Point(242_336, 0.13, "b")], COLOURS[0])
    width = 640
    svg = str(scatter_chart([points], title="MACs", x_label="MACs", x_format=lambda v: f"{v:,.0f}", width=width))
    root = ET.fromstring(svg)
    [last] = [t for t in root.findall(f"{SVG}text") if t.text == "250,000"]
    # centred on its tick, 2 px from the edge, half its 7 characters would run outside: it ends at the edge
    assert last.get("text-anchor") == "end" and float(last.get("x")) <= width
    middle = [t for t in root.findall(f"{SVG}text") if t.text == "150,000"]
    assert middle and middle[0].get("text-anchor") == "middle"  # the others stay centred under their ticks

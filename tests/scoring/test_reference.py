"""Agreement with a reference graded by the task's judge: the judge sees the reference variant's answer where it
would see the item's expected answer, and its grade is the agreement."""

import yaml

from harness.rundir import RunFolder
from tests.fakes.openai_server import last_user_text
from tests.scoring.test_judge import Server, do_run, judged_config, judged_set


def test_judge_grades_agreement_against_the_reference_answer(tmp_path):
    ev = judged_set(tmp_path)
    server = Server({"Paris.": 5, "It is Munich!": 1, "tokyo": 4})
    with server.fake:
        path = judged_config(tmp_path, ev, server.fake.base_url)
        cfg = yaml.safe_load(path.read_text())
        cfg["variants"].append({"name": "prod", "kind": "baseline", "model": "small", "instructions": "Answer."})
        cfg["reference"] = "prod"
        path.write_text(yaml.safe_dump(cfg))
        res = do_run(path, tmp_path, "r")
        prompts = [last_user_text(r) for r in server.judge_requests()]
    recs = {(r.variant, r.item_id): r for r in RunFolder.open(res.run_dir).latest_records()}
    fr = recs[("baseline", "fr")].scores["agreement"]
    # the reference's own answer ("Paris.", not the label "Paris") is the judge's reference: 5/5 -> 1.0
    assert fr.value == 1.0 and fr.detail["reference"] == "prod" and fr.detail["scores"]["voice"] == 1.0
    assert any("## Reference answer\nParis.\n" in p and p.endswith("<answer>\nParis.\n</answer>") for p in prompts)
    assert recs[("baseline", "jp")].scores["agreement"].value == 0.75
    assert "agreement" not in recs[("prod", "fr")].scores  # the reference is not scored against itself

"""The offline proxy judge (``backend: proxy``): rubric criteria graded with a sentence encoder.

Runtime (what grading imports): ``judge`` (ProxyJudge), ``text`` (pure text rules), ``encoder``
(all-MiniLM-L6-v2, offline), ``features`` and ``calibration`` (applies the shipped
``assets/calibration.json``).

Tooling (never imported by grading): ``tuning`` loads the labelled tuning cases
(``assets/cases.jsonl``), cross-validates, and refits the calibration
(``python -m edgemed.judges.proxy.tuning``). See docs/proxy_judge.md.
"""

from edgemed.judges.proxy.judge import PROXY_VERSION, ProxyJudge

__all__ = ["PROXY_VERSION", "ProxyJudge"]

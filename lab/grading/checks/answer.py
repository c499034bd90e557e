"""answer_file: the learner wrote the answer into a file, exam style
("write the name of the pod that reads /dev/mem into /opt/course/1/pod.txt")."""

from __future__ import annotations

from collections.abc import Iterable

from lab.grading.checks.base import Context, Outcome, Params, register
from lab.schema import Loc, record


@record
class AnswerParams(Params):
    node: str
    path: str  # absolute path on the node
    value: str | list[str]  # the answer, or every accepted answer

    def _problems(self) -> Iterable[tuple[Loc, str]]:
        if not self.path.startswith("/"):
            yield ("path",), "must be an absolute path on the node"
        if not self.answers:
            yield ("value",), "needs at least one accepted answer"

    @property
    def answers(self) -> list[str]:
        values = [self.value] if isinstance(self.value, str) else self.value
        return [v.strip() for v in values if v.strip()]


def _title(p: AnswerParams) -> str:
    return f"{p.path} on node {p.node} holds the answer"


@register("answer_file", AnswerParams, _title)
def answer_file(p: AnswerParams, ctx: Context) -> Outcome:
    files = ctx.evidence.files
    if files is None:
        raise RuntimeError("answer_file needs the node files; the backend offers none")
    where = f"{p.path} on node {p.node}"
    fact = files.read(p.node, p.path)
    if not fact.exists:
        return Outcome(False, f"{where} does not exist: write the answer into it")
    if fact.text is None:
        return Outcome(False, f"{where} cannot be read: {fact.error}")
    got = fact.text.strip()
    if got in p.answers:
        return Outcome(True, f"{where} holds {got!r}")
    if not got:
        return Outcome(False, f"{where} is empty: write the answer into it")
    if got.lower() in (a.lower() for a in p.answers):
        return Outcome(False, f"{where} holds {got!r}: right, except for upper/lower case")
    shown = got if len(got) <= 80 else got[:77] + "..."
    if any(a in got.split() or a in got.splitlines() for a in p.answers):
        return Outcome(
            False, f"{where} holds {shown!r}: more than the answer; write only the answer itself"
        )
    return Outcome(False, f"{where} holds {shown!r}, which is not the right answer")

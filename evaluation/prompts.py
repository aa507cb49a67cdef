"""Prompts for model evaluation runs: a system prompt, a multiple-choice template, optional k-shot turns.

A task is data plus a small prompt function (as in lm-evaluation-harness): each task record (evaluation/tasks.py)
names its prompt function here (`Task.user_text`) and its reference text; an item becomes chat messages through its
task's record, and the registry applies the model's own chat template. k-shot examples come from a separate file
(never the evaluated set) and are given as earlier user/assistant turns, which is how chat models expect worked
examples.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Sequence

from evaluation.data import Item, MCItem, QAItem
from models.templates import DEFAULT_SYSTEM  # one default system prompt for training, chat and evaluation

# {kind} says single or multiple answer, as real exam papers do; {options} is one "A. text" line per option.
DEFAULT_MC_TEMPLATE = "以下是一道医学{kind}，请选出正确答案。\n\n{question}\n{options}\n\n请直接回答正确选项的字母。"
DEFAULT_QA_TEMPLATE = "{input}"
MC_KINDS = ("单项选择题", "多项选择题（正确答案不止一个）")

if TYPE_CHECKING:  # for the annotation only: the task records import this module's prompt functions
    from evaluation.tasks import Task

Messages = list[dict[str, str]]


@dataclass(frozen=True)
class PromptConfig:
    system: str = DEFAULT_SYSTEM  # "" for none
    mc_template: str = DEFAULT_MC_TEMPLATE
    qa_template: str = DEFAULT_QA_TEMPLATE

    def __post_init__(self) -> None:
        for name, template, fields in (("mc_template", self.mc_template, ("question", "options")),
                                       ("qa_template", self.qa_template, ("input",))):
            for field in fields:
                if "{" + field + "}" not in template:
                    raise ValueError(f"{name} must contain {{{field}}}, got {template!r}")
            try:
                template.format(question="", options="", kind="", input="")
            except (KeyError, IndexError, ValueError) as exc:
                raise ValueError(f"{name}: unknown or malformed placeholder {exc} in {template!r} "
                                 "(allowed: {question}, {options}, {kind} / {input}; write {{ for a brace)") from None

    def to_dict(self) -> dict:
        return asdict(self)


def mc_user_text(item: MCItem, config: PromptConfig) -> str:
    options = "\n".join(f"{letter}. {text}" for letter, text in item.options.items())
    kind = MC_KINDS[len(item.answer) > 1]
    return config.mc_template.format(question=item.question, options=options, kind=kind)


def qa_user_text(item: QAItem, config: PromptConfig) -> str:
    return config.qa_template.format(input=item.input)


def build_messages(task: "Task", item: Item, config: PromptConfig, shots: Sequence[Item] = ()) -> Messages:
    """The system prompt, each worked example (`shots`, items of the same task) as a user/assistant pair, then the
    item; what an item of the task says is its record's (`task.user_text`, `task.reference_text`)."""
    messages: Messages = [{"role": "system", "content": config.system}] if config.system else []
    for shot in shots:
        messages += [{"role": "user", "content": task.user_text(shot, config)},
                     {"role": "assistant", "content": task.reference_text(shot)}]
    return messages + [{"role": "user", "content": task.user_text(item, config)}]

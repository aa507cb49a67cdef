"""Every user-visible string of the app, in one place (English first; Chinese beside it for the language switch).

Each tab owns one block of keys prefixed with its name. Add keys with small edits; never rewrite this file whole.
"""

from __future__ import annotations

STRINGS: dict[str, tuple[str, str]] = {
    # --- app ---
    "app.title": ("Medical model workbench", "医疗模型工作台"),
    "app.subtitle": (
        "Fine-tune, compare and score small chat models on Chinese medical data.",
        "在中文医疗数据上微调、对比和评测小型对话模型。",
    ),
    "app.demo_model_note": (
        "Running on the built-in **demo** model (tiny, trained on the bundled samples: it knows no medicine). "
        "Start with `--model Qwen/Qwen2.5-0.5B-Instruct` or set `MEDTUNE_MODEL` for a real one.",
        "当前使用内置**演示**模型（极小，只在自带样例上训练过，不具备医学知识）。"
        "用 `--model Qwen/Qwen2.5-0.5B-Instruct` 或设置 `MEDTUNE_MODEL` 以使用真实模型。",
    ),
    # --- score tab ---
    "score.tab": ("Score a submission", "评测提交文件"),
    "score.intro": (
        "Check a predictions file against a reference file before you upload it to a competition: the scores, "
        "then every problem in the file (line, id, what is wrong, how to fix it).",
        "上传到比赛之前，先用参考答案检查并评测你的预测文件：先给出分数，再列出文件中的每个问题（行号、id、问题、修改方法）。",
    ),
    "score.sample": ("Bundled sample", "内置样例"),
    "score.sample_none": ("(my own files)", "（使用我上传的文件）"),
    "score.sample_mc": ("Multiple choice: mc_sample + its predictions", "选择题：mc_sample 及其预测"),
    "score.sample_qa": ("Free-form: qa_sample + its predictions", "问答题：qa_sample 及其预测"),
    "score.reference": ("Reference file (JSONL, JSON or CSV)", "参考答案文件（JSONL、JSON 或 CSV）"),
    "score.predictions": ("Predictions file", "预测文件"),
    "score.task": ("Task", "任务类型"),
    "score.task_choices": ("auto|multiple choice|free-form", "自动|选择题|问答题"),
    "score.options": ("Options", "选项"),
    "score.weights": ("Combined score weights (e.g. rouge-l=0.5,bleu-4=0.5)", "综合分权重（如 rouge-l=0.5,bleu-4=0.5）"),
    "score.run": ("Score", "评测"),
    "score.scores": ("Scores", "分数"),
    "score.problems": ("Problems in the file", "文件中的问题"),
    "score.items": ("Per item, worst first", "逐题结果（最差在前）"),
    "score.downloads": ("Downloads", "下载"),
    "score.need_files": (
        "Upload a reference file and a predictions file, or pick a bundled sample.",
        "请上传参考答案文件和预测文件，或选择一个内置样例。",
    ),
    "score.status_ok": ("The file is valid.", "文件有效。"),
    "score.status_3": ("The reference file is malformed: nothing was scored.", "参考答案文件格式有误：未评分。"),
    "score.status_4": (
        "The predictions file is malformed: fix the errors below before uploading.",
        "预测文件格式有误：上传前请修正下列错误。",
    ),
    "score.status_5": (
        "The predictions do not match the reference: fix the errors below before uploading.",
        "预测与参考答案不匹配：上传前请修正下列错误。",
    ),
    "score.summary": ("**Score {score:.2f}** ({task}, {n} items). {status}", "**综合分 {score:.2f}**（{task}，共 {n} 题）。{status}"),
    "score.col_metric": ("metric", "指标"),
    "score.col_value": ("value", "数值"),
}


def t(key: str, lang: str = "en") -> str:
    english, chinese = STRINGS[key]
    return chinese if lang == "zh" else english

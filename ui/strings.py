"""Every user-visible string of the app, in one place (English first; Chinese beside it for the language switch).

Each tab owns one block of keys prefixed with its name. Add keys with small edits; never rewrite this file whole.
"""

from __future__ import annotations

from safeio.problems import FIXES as PROBLEM_FIXES, MESSAGES as PROBLEM_MESSAGES

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
    # --- errors (ui/errors.py) ---
    "error.unexpected": (
        "Something went wrong on the server (request id {request_id}). Please try again; if it keeps happening, "
        "give the admin this request id.",
        "服务器出错了（请求编号 {request_id}）。请重试；如果反复出现，请把这个请求编号告诉管理员。",
    ),
    "error.backend_detail": ("{detail}", "无法完成请求（以下为后端原文）：{detail}"),
    # --- access ---
    "access.denied": (
        "User {user} (role {role}) may not {action}. Ask the admin for a role that may.",
        "用户 {user}（角色 {role}）无权{action}。请向管理员申请相应角色。",
    ),
    "access.action.score": ("score submissions", "评测提交文件"),
    "access.action.chat": ("chat with models", "与模型对话"),
    "access.action.vote": ("vote", "投票"),
    "access.action.evaluate": ("run evaluations", "运行评测"),
    "access.action.train": ("start training", "开始训练"),
    "access.action.manage_models": ("load or unload models", "加载或卸载模型"),
    "access.action.manage_all_jobs": ("manage other users' jobs", "管理其他用户的任务"),
    # --- upload worker (safeio.worker): parsing of uploads runs in a memory-limited process ---
    "safeio.worker_memory": (
        "The file needs more memory than one request may use ({detail}). Split it into smaller files, or ask the "
        "admin to raise MEDTUNE_WORKER_MEMORY_MB.",
        "该文件所需内存超出单个请求的上限（{detail}）。请拆分为较小的文件，或请管理员调高 MEDTUNE_WORKER_MEMORY_MB。",
    ),
    "safeio.detail_timeout": ("stopped after {seconds} s", "{seconds} 秒后已停止"),
    "safeio.detail_memory": ("ran out of its {memory_mb} MB", "用尽了 {memory_mb} MB 的上限"),
    "safeio.detail_ended": ("the worker process ended; most likely it ran out of its {memory_mb} MB",
                            "工作进程已结束，很可能是用尽了 {memory_mb} MB 的上限"),
    "safeio.detail_crashed": ("the worker process failed", "工作进程出错"),
    "safeio.worker_timeout": (
        "Reading the file took too long ({detail}). Split it into smaller files, or ask the admin to raise "
        "MEDTUNE_WORKER_TIMEOUT_S.",
        "读取该文件耗时过长（{detail}）。请拆分为较小的文件，或请管理员调高 MEDTUNE_WORKER_TIMEOUT_S。",
    ),
    "access.action.export_votes": ("export every voter's votes", "导出所有人的投票记录"),
    "access.bad_model_ref": (
        "model {model}: not a model you may use here. Give a hub id (owner/name) or a directory under the model "
        "folders the admin allows (ask the admin which).",
        "模型 {model}：此处不能使用该模型。请填写模型库 ID（owner/name）或管理员允许的模型目录下的目录（请向管理员询问）。",
    ),
    # --- server ---
    "server.login_title": ("Sign in", "登录"),
    "server.username": ("User name", "用户名"),
    "server.password": ("Password", "密码"),
    "server.sign_in": ("Sign in", "登录"),
    "server.bad_login": ("Wrong user name or password.", "用户名或密码错误。"),
    "server.login_limited": (
        "Too many failed sign-ins. Wait {seconds} s, then try again.",
        "登录失败次数过多，请等待 {seconds} 秒后再试。",
    ),
    "server.login_note": ("Ask the admin of this server for an account.", "请向本服务器的管理员申请账号。"),
    "server.switch": ("中文", "English"),  # the link to the other language, in that language
    "server.signed_in_as": ("Signed in as <b>{user}</b> ({role})", "当前用户：<b>{user}</b>（{role}）"),
    "server.log_out": ("Log out", "退出登录"),
    "server.log_out_question": ("Log out of this server?", "确定退出登录？"),
    "server.form_expired": (
        "This form has expired or was sent from another site. Please try again.",
        "此表单已过期或来自其他网站，请重试。",
    ),
    "server.cross_site": ("Refused: this request came from another site.", "已拒绝：此请求来自其他网站。"),
    "server.role.admin": ("admin", "管理员"),
    "server.role.member": ("member", "成员"),
    "server.role.guest": ("guest", "访客"),
    "server.open_warning": (
        "⚠️ **No login is configured and this app is reachable from the network**: anyone who finds the address "
        "can train, load models and stop jobs as admin. Add users (`python -m hosting.users add NAME --role admin`) "
        "or set `MEDTUNE_ADMIN_PASSWORD`, then restart.",
        "⚠️ **未配置登录且本应用可从网络访问**：任何知道地址的人都能以管理员身份训练、加载模型和停止任务。"
        "请添加用户（`python -m hosting.users add NAME --role admin`）或设置 `MEDTUNE_ADMIN_PASSWORD` 后重启。",
    ),
    # --- score tab ---
    "score.tab": ("Score a submission", "评测提交文件"),
    "score.intro": (
        "Check a predictions file against a reference file before you upload it to a competition: the scores, "
        "then every problem in the file (line, id, what is wrong, how to fix it). With a test file that has no "
        "answers, the submission is checked against it (count, order or ids, echoed fields, answer letters) "
        "without scoring.",
        "上传到比赛之前，先用参考答案检查并评测你的预测文件：先给出分数，再列出文件中的每个问题（行号、id、问题、修改方法）。"
        "若上传的是没有答案的测试文件，则只按测试文件检查提交文件（条数、顺序或 id、原样保留的字段、答案字母），不评分。",
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
    # --- chat tab ---
    "chat.tab": ("Chat & compare", "对话与对比"),
    "chat.intro": (
        "Ask every ticked model the same question and watch the answers stream side by side. The base model answers "
        "with every adapter switched off. Decoding is greedy by default (temperature 0), so answers are reproducible.",
        "向勾选的每个模型提同一个问题，并排实时查看回答。基座模型在关闭所有适配器的情况下作答。"
        "默认贪心解码（温度为 0），回答可复现。",
    ),
    "chat.mode_side": ("Side by side", "并排对比"),
    "chat.mode_blind": ("Blind test", "盲测"),
    "chat.mode_board": ("Leaderboard", "排行榜"),
    "chat.models": ("Models (tick 1 to 4)", "模型（勾选 1 至 4 个）"),
    "chat.models_info": (
        "Adapters trained in the Fine-tune tab appear after Refresh. A newly ticked model starts its own history.",
        "在微调页训练的适配器点击“刷新”后出现。新勾选的模型从空白对话开始。",
    ),
    "chat.refresh": ("Refresh models", "刷新模型列表"),
    "chat.model_table": ("Loaded models and memory", "模型与内存占用"),
    "chat.col_model": ("model", "模型"),
    "chat.col_kind": ("kind", "类型"),
    "chat.col_memory": ("memory", "内存"),
    "chat.col_status": ("status", "状态"),
    "chat.kind_base": ("base", "基座"),
    "chat.kind_adapter": ("adapter", "适配器"),
    "chat.kind_remote": ("remote", "远程"),
    "chat.where_local": ("in this app", "本机"),
    "chat.where_remote": ("served by {endpoint}", "由 {endpoint} 提供"),
    "chat.remote_failed": ("⚠ This model failed: {reason}", "⚠ 该模型出错：{reason}"),
    "chat.endpoints_file_error": (
        "The endpoints file has an error; the last good list is in use. {error}",
        "端点配置文件有误，仍使用上一次正确的列表。{error}",
    ),
    "chat.loaded": ("{size} in memory", "已加载，占用 {size}"),
    "chat.decoding_path": ("; decoding: {path}", "；解码方式：{path}"),
    "chat.on_disk": ("not loaded ({size} on disk)", "未加载（磁盘 {size}）"),
    "chat.base_not_loaded": ("loads on first question", "首次提问时加载"),
    "chat.incompatible": ("cannot be used: {reason}", "不可用：{reason}"),
    "chat.prompt": ("Your question", "你的问题"),
    "chat.prompt_placeholder": ("e.g. 高血压患者饮食要注意什么？ (Enter sends)", "例如：高血压患者饮食要注意什么？（回车发送）"),
    "chat.send": ("Send", "发送"),
    "chat.stop": ("Stop", "停止"),
    "chat.regenerate": ("Regenerate", "重新生成"),
    "chat.clear": ("Clear", "清空"),
    "chat.decoding": ("System prompt and decoding", "系统提示词与解码参数"),
    "chat.system": ("System prompt", "系统提示词"),
    "chat.max_new_tokens": ("Max new tokens", "最大生成长度"),
    "chat.temperature": ("Temperature (0 = greedy)", "温度（0 为贪心解码）"),
    "chat.top_p": ("Top-p (sampling only)", "Top-p（仅采样时）"),
    "chat.top_k": ("Top-k (0 = off; sampling only)", "Top-k（0 为关闭；仅采样时）"),
    "chat.repetition_penalty": ("Repetition penalty", "重复惩罚"),
    "chat.seed": ("Seed (sampling only)", "随机种子（仅采样时）"),
    "chat.status_waiting": ("Waiting: {n} request(s) ahead of yours…", "排队中：前面还有 {n} 个请求…"),
    "chat.status_running": ("Generating… {tokens} tokens so far", "生成中…已生成 {tokens} 个词元"),
    "chat.status_done": (
        "Done: {speed:.1f} tokens/s per pane, first token after {ttft:.2f} s.",
        "完成：每个窗格 {speed:.1f} 词元/秒，首个词元用时 {ttft:.2f} 秒。",
    ),
    "chat.status_stopped": ("Stopped.", "已停止。"),
    "chat.status_stopped_after": ("Stopped after {tokens} tokens.", "已停止，共生成 {tokens} 个词元。"),
    "chat.need_prompt": ("Type a question first.", "请先输入问题。"),
    "chat.nothing_to_regenerate": ("Nothing to regenerate yet.", "还没有可重新生成的回答。"),
    "chat.pane_a": ("Model A", "模型 A"),
    "chat.pane_b": ("Model B", "模型 B"),
    "chat.blind_intro": (
        "Two models chosen at random answer anonymously. Chat as long as you like, then vote; the names are shown "
        "only after your vote. Votes feed the leaderboard.",
        "随机选出两个匿名模型作答。可多轮对话后投票；投票后才揭晓模型名称。投票计入排行榜。",
    ),
    "chat.blind_new": ("New battle", "新一轮对战"),
    "chat.blind_ready": ("New battle: two hidden models are ready. Ask a question.", "新一轮对战：两个匿名模型已就绪，请提问。"),
    "chat.blind_need_battle": ("Press “New battle” first.", "请先点击“新一轮对战”。"),
    "chat.vote_a": ("👈 A is better", "👈 A 更好"),
    "chat.vote_b": ("👉 B is better", "👉 B 更好"),
    "chat.vote_tie": ("🤝 Tie", "🤝 平局"),
    "chat.vote_both_bad": ("👎 Both are bad", "👎 都不好"),
    "chat.blind_reveal": (
        "Model A was **{a}**, Model B was **{b}**. Your vote ({outcome}) is saved; press “New battle” to go on.",
        "模型 A 是 **{a}**，模型 B 是 **{b}**。你的投票（{outcome}）已保存；点击“新一轮对战”继续。",
    ),
    "chat.board_intro": (
        "Ties and “both bad” count as half a win each. Win rate = wins / battles. Head-to-head: the row model's "
        "score against the column model. Elo: K=32 from 1000, in vote order. Bradley–Terry: maximum likelihood on the "
        "Elo scale (mean 1000). Intervals: 95 % bootstrap over votes (200 rounds).",
        "平局与“都不好”各计半场胜利。胜率 = 胜场 / 对战数。对战矩阵：行模型对列模型的得分。"
        "Elo：初始 1000，K=32，按投票顺序更新。Bradley–Terry：最大似然估计，换算到 Elo 刻度（均值 1000）。"
        "区间：对投票做 200 轮自助抽样的 95% 区间。",
    ),
    "chat.board_refresh": ("Refresh leaderboard", "刷新排行榜"),
    "chat.board_standings": ("Ratings", "评分"),
    "chat.board_h2h": ("Head-to-head (row's score against column)", "对战矩阵（行模型对列模型的得分）"),
    "chat.board_csv": ("Ratings and head-to-head (CSV)", "评分与对战矩阵（CSV）"),
    "chat.board_export": ("Votes export (admin)", "投票导出（管理员）"),
    "chat.board_export_intro": (
        "Every vote with its prompt, both answers and conversations, the voter's user name and the vote's id. "
        "These are other people's words: keep the file private.",
        "每一票的提问、两个回答与完整对话、投票用户名和投票编号。这些是他人的内容，请勿公开此文件。",
    ),
    "chat.board_export_button": ("Export all votes (CSV)", "导出全部投票（CSV）"),
    "chat.board_export_file": ("All votes (CSV)", "全部投票（CSV）"),
    "chat.board_summary": ("{n} votes on base model **{base}**.", "基座模型 **{base}** 上共 {n} 票。"),
    "chat.board_empty": ("No votes yet: vote in the Blind test first.", "还没有投票：请先在盲测中投票。"),
    "chat.col_battles": ("battles", "对战数"),
    "chat.col_wins": ("wins", "胜"),
    "chat.col_losses": ("losses", "负"),
    "chat.col_ties": ("ties", "平"),
    "chat.col_win_rate": ("win rate", "胜率"),
    "chat.col_elo": ("Elo", "Elo"),
    "chat.col_elo_ci": ("Elo 95% CI", "Elo 95% 区间"),
    "chat.col_bt": ("Bradley–Terry", "Bradley–Terry"),
    "chat.col_bt_ci": ("BT 95% CI", "BT 95% 区间"),
    # --- finetune tab ---
    "finetune.tab": ("Fine-tune", "微调"),
    "finetune.intro": (
        "Train a LoRA adapter on your data. **Preview** first: it shows how many rows were read, every rejected row "
        "with its line and reason, and examples rendered with the chat template, the trained (assistant) tokens "
        "highlighted. Runs continue in the background: reload the page or come back later to follow them. "
        "Finished adapters appear by name in the Chat tab.",
        "用你的数据训练 LoRA 适配器。先点**预览**：显示读取的行数、每个被拒绝的行（行号与原因），以及按对话模板渲染的示例，"
        "参与训练的（助手）词元会高亮。训练在后台运行：刷新页面或稍后回来都能继续查看。训练完成的适配器会以名称出现在对话页。",
    ),
    "finetune.model": ("Base model (hub id, local directory, or demo)", "基座模型（Hub ID、本地目录或 demo）"),
    "finetune.data_file": ("Data file (.jsonl / .json / .csv / .xlsx)", "数据文件（.jsonl / .json / .csv / .xlsx）"),
    "finetune.sample": ("…or a bundled sample", "……或使用自带样例"),
    "finetune.format": ("Format", "数据格式"),
    "finetune.column_map": ("Column mapping (tables)", "列映射（表格数据）"),
    "finetune.column_map_ph": ("e.g. instruction=问题, output=回答", "例如：instruction=问题, output=回答"),
    "finetune.preview": ("Preview", "预览"),
    "finetune.rejected": ("Rejected rows", "被拒绝的行"),
    "finetune.examples": ("Examples as the model sees them (highlighted = trained)", "模型看到的样例（高亮部分参与训练）"),
    "finetune.settings": ("Training settings", "训练参数"),
    "finetune.advanced": ("Advanced", "高级"),
    "finetune.start": ("Start", "开始训练"),
    "finetune.stop": ("Stop", "停止"),
    "finetune.resume": ("Resume", "继续训练"),
    "finetune.show_command": ("Show command", "显示命令"),
    "finetune.job": ("Job", "训练任务"),
    "finetune.refresh": ("Refresh", "刷新"),
    "finetune.loss": ("Loss", "损失"),
    "finetune.eval_sets": ("Validation sets scored during training", "训练中评测的验证集"),
    "finetune.eval_sets_info": (
        "Scored every 'eval every' steps and at each epoch end (accuracy / ROUGE, as the Evaluate tab); the best "
        "checkpoint becomes the adapter, the last one is kept as <name>-last.",
        "每隔“评测间隔”步及每轮结束时评测（准确率 / ROUGE，与评测页相同）；最佳检查点作为适配器，最后一步保存为 <名称>-last。"),
    "finetune.eval_uploads": ("…and/or your own validation files (multiple choice, free-form or competition style; "
                              "checked before the run is queued)",
                              "……以及/或者你自己的验证文件（单选、问答或比赛格式；排队前先检查）"),
    "finetune.bad_eval_set": ("{name} is not one of the offered validation sets.", "{name} 不是可选的验证集。"),
    "finetune.best": ("Best {metric} = {value} at step {step}; evaluating took {share}% of the run.",
                      "最佳 {metric} = {value}（第 {step} 步）；评测占用了 {share}% 的训练时间。"),
    "finetune.series_best": ("best {metric} @ {step}", "最佳 {metric} @ 第 {step} 步"),
    "finetune.stopped_early": ("Stopped early: no improvement.", "已提前停止：指标不再提升。"),
    "finetune.eval_every": ("Eval every N steps (0 = epoch ends)", "评测间隔步数（0 = 每轮结束时）"),
    "finetune.eval_limit": ("Eval items per set", "每个验证集评测条数"),
    "finetune.select_by": ("Select by (accuracy:SET, rouge-l:SET, eval_loss)", "选择依据（accuracy:集名、rouge-l:集名、eval_loss）"),
    "finetune.early_stop": ("Early stop after N evals without gain (0 = off)", "连续 N 次评测无提升则提前停止（0 = 关闭）"),
    "finetune.eval_budget": ("Eval time cap (share of the run, 0 = none)", "评测时间上限（占训练时间比例，0 = 不限）"),
    "finetune.log": ("Log (last lines)", "日志（最后几行）"),
    "finetune.samples": ("Answers to the fixed prompts during training", "训练中对固定提示的回答"),
    "finetune.need_data": ("Upload a data file or pick a sample first.", "请先上传数据文件或选择样例。"),
    "finetune.need_job": ("Pick a job first.", "请先选择训练任务。"),
    "finetune.bad_job": ("No training job {job}: pick one from the list.", "没有训练任务 {job}：请从列表中选择。"),
    "finetune.not_yours": (
        "Job {job} is not in the queue under your name: its progress, log and data are shown to its owner and the "
        "admin only.",
        "任务 {job} 不是你在队列中提交的：其进度、日志和数据只对提交者和管理员可见。",
    ),
    "finetune.no_checkpoint": ("Job {job} has no checkpoint to resume from; it will start again from step 0.", "任务 {job} 没有可恢复的检查点，将从第 0 步重新开始。"),
    "finetune.already_done": ("Job {job} has already completed; start a new run instead.", "任务 {job} 已完成；请开始新的训练。"),
    "finetune.bad_model": ("model: cannot load the tokenizer of {model!r}: {error}", "模型：无法加载 {model!r} 的分词器：{error}"),
    "finetune.no_jobs": ("No training job yet.", "还没有训练任务。"),
    "finetune.status": (
        "**{job}**: {state} · step {step}/{total} · {speed} tokens/s · ETA {eta} · loss {loss} · eval loss {eval_loss}",
        "**{job}**：{state} · 第 {step}/{total} 步 · {speed} 词元/秒 · 剩余 {eta} · 损失 {loss} · 验证损失 {eval_loss}",
    ),
    "finetune.adapter_ready": ("Adapter **{name}** saved to `{path}`.", "适配器 **{name}** 已保存到 `{path}`。"),
    "finetune.failed": ("Failed: {error}", "失败：{error}"),
    "finetune.preview_summary": (
        "**{kept}** of {total} rows kept ({fmt}); **{rejected}** rejected ({dup} duplicates). {tokens}",
        "共 {total} 行，保留 **{kept}** 行（格式 {fmt}）；拒绝 **{rejected}** 行（其中重复 {dup} 行）。{tokens}",
    ),
    "finetune.preview_tokens": (
        "{tokens} tokens, {trained} of them trained; {truncated} rows truncated at cutoff length {cutoff}, {dropped} dropped.",
        "共 {tokens} 个词元，其中 {trained} 个参与训练；{truncated} 行在截断长度 {cutoff} 处被截断，{dropped} 行被丢弃。",
    ),
    "finetune.lora_rank": ("LoRA rank", "LoRA 秩"),
    "finetune.lora_alpha": ("LoRA alpha", "LoRA alpha"),
    "finetune.lora_dropout": ("LoRA dropout", "LoRA dropout"),
    "finetune.lora_targets": ("LoRA target modules", "LoRA 目标模块"),
    "finetune.load_in_4bit": ("4-bit base (QLoRA, CUDA only)", "4 比特基座（QLoRA，仅 CUDA）"),
    "finetune.learning_rate": ("Learning rate", "学习率"),
    "finetune.lr_scheduler": ("Schedule", "学习率调度"),
    "finetune.num_epochs": ("Epochs", "训练轮数"),
    "finetune.max_steps": ("Max steps (0 = use epochs)", "最大步数（0 表示按轮数）"),
    "finetune.batch_size": ("Batch size", "批大小"),
    "finetune.grad_accum": ("Gradient accumulation", "梯度累积"),
    "finetune.cutoff_len": ("Cutoff length (tokens)", "截断长度（词元）"),
    "finetune.val_split": ("Validation split (fraction, or rows if ≥ 1)", "验证集比例（小于 1 为比例，≥ 1 为行数）"),
    "finetune.packing": ("Packing (several conversations per row)", "打包（每行多条对话）"),
    "finetune.seed": ("Seed", "随机种子"),
    "finetune.warmup_ratio": ("Warm-up ratio", "预热比例"),
    "finetune.weight_decay": ("Weight decay", "权重衰减"),
    "finetune.max_grad_norm": ("Max gradient norm", "最大梯度范数"),
    "finetune.logging_steps": ("Log every N steps", "每 N 步记录"),
    "finetune.eval_steps": ("Evaluate every N steps (0 = at the end)", "每 N 步验证（0 表示结束时）"),
    "finetune.save_steps": ("Checkpoint every N steps", "每 N 步保存检查点"),
    "finetune.sample_every": ("Sample answers every N steps (0 = never)", "每 N 步生成样例回答（0 表示不生成）"),
    "finetune.sample_prompts": ("Sample prompts (one per line)", "样例提示（每行一个）"),
    "finetune.precision": ("Precision", "精度"),
    "finetune.gradient_checkpointing": ("Gradient checkpointing", "梯度检查点"),
    "finetune.max_samples": ("Max samples (0 = all)", "最大样本数（0 表示全部）"),
    "finetune.dedup": ("Drop duplicate rows", "去除重复行"),
    "finetune.adapter_name": ("Adapter name (empty = job id)", "适配器名称（留空则用任务 ID）"),
    "finetune.processes": ("Processes per machine (one per GPU; data parallel)",
                           "每台机器的进程数（每块 GPU 一个；数据并行）"),
    # --- jobs ---
    "jobs.tab": ("Jobs", "任务队列"),
    "jobs.intro": (
        "Training and evaluation jobs of all users wait in one line and run {slots} at a time, oldest first. You "
        "may cancel or resume your own jobs (the admin: any job). Jobs, logs and metrics are kept on disk: after a "
        "server restart a job that was running shows as *interrupted*; **Resume** continues it (training from its "
        "last checkpoint, an evaluation from the last finished batch). Training runs started on the command line "
        "(`python -m finetune train`) are listed here too, owned by *(cli)* (the admin's to manage) unless started "
        "with `--owner NAME`.",
        "所有用户的训练与评测任务排成一队，按提交顺序每次运行 {slots} 个。你可以取消或继续自己的任务（管理员可管理所有任务）。"
        "任务、日志与指标都保存在磁盘上：服务器重启后，原先运行中的任务显示为*已中断*；点击**继续**即可接着运行"
        "（训练从最后一个检查点继续，评测从最后完成的批次继续）。在命令行启动的训练（`python -m finetune train`）也列在这里，"
        "提交者为 *(cli)*（由管理员管理），除非启动时用 `--owner 用户名` 指定。",
    ),
    "jobs.table": ("All jobs", "全部任务"),
    "jobs.columns": ("id|kind|label|owner|state|position|progress|ETA|created",
                     "编号|类型|名称|提交者|状态|排队位置|进度|预计剩余|创建时间"),
    "jobs.kind.train": ("training", "训练"),
    "jobs.kind.evaluate": ("evaluation", "评测"),
    "jobs.state.queued": ("queued", "排队中"),
    "jobs.state.running": ("running", "运行中"),
    "jobs.state.completed": ("completed", "已完成"),
    "jobs.state.failed": ("failed", "失败"),
    "jobs.state.cancelled": ("cancelled", "已取消"),
    "jobs.state.interrupted": ("interrupted", "已中断"),
    "jobs.stopping": (" (stopping)", "（正在停止）"),
    "jobs.unknown": ("unknown", "未知"),
    "jobs.starts_in": ("starts in {eta}", "{eta} 后开始"),
    "jobs.queued_status": ("Job {job} is **queued**, position {position} in line; starts in {wait}.",
                           "任务 {job} **排队中**，排在第 {position} 位；预计 {wait} 后开始。"),
    "jobs.interrupted_status": (
        "Job {job} was **interrupted** (the server stopped while it ran). Resume continues it.",
        "任务 {job} **已中断**（运行时服务器停止了）。点击继续即可接着运行。",
    ),
    "jobs.job": ("Job", "任务"),
    "jobs.refresh": ("Refresh", "刷新"),
    "jobs.cancel": ("Cancel", "取消任务"),
    "jobs.resume": ("Resume", "继续"),
    "jobs.log": ("Log (last lines) / progress", "日志（最后几行）/ 进度"),
    "jobs.need_job": ("Pick a job first.", "请先选择任务。"),
    "jobs.none_selected": ("No job selected.", "未选择任务。"),
    "jobs.detail": ("**{job}** · {kind} · owner {owner} · **{state}** · created {created}, started {started}, "
                    "finished {finished}",
                    "**{job}** · {kind} · 提交者 {owner} · **{state}** · 创建 {created}，开始 {started}，结束 {finished}"),
    "jobs.error": ("Error: {error}", "错误：{error}"),
    "jobs.not_yours": (
        "This is another user's job: its log, progress details and data are shown to its owner and the admin only.",
        "这是其他用户的任务：日志、进度详情和数据只对提交者和管理员可见。",
    ),
    "jobs.action.cancel": ("cancel", "取消"),
    "jobs.action.resume": ("resume", "继续"),
    "jobs.not_allowed": ("User {user} may not {action} job {job}: it belongs to {owner}; only its owner or the admin may.",
                         "用户 {user} 无权{action}任务 {job}：该任务属于 {owner}，只有提交者或管理员可以操作。"),
    "jobs.cannot_cancel": ("Job {job} is {state}: only a queued, running or interrupted job can be cancelled.",
                           "任务 {job} 当前{state}：只有排队中、运行中或已中断的任务可以取消。"),
    "jobs.cannot_resume": ("Job {job} is {state}: only an interrupted, cancelled or failed job can be resumed.",
                           "任务 {job} 当前{state}：只有已中断、已取消或失败的任务可以继续。"),
    "jobs.not_found": ("No job {job} in the queue.", "队列中没有任务 {job}。"),
    "jobs.action.compare": ("compare", "对比"),
    "jobs.compare_title": ("Compare finished training runs", "对比已完成的训练"),
    "jobs.compare_runs": ("Runs", "训练任务"),
    "jobs.compare_info": ("Your own finished training jobs (the admin: everyone's), on the same validation sets.",
                          "你自己已完成的训练任务（管理员：所有人的），最好使用相同的验证集。"),
    "jobs.compare_metric": ("Metric", "指标"),
    "jobs.compare": ("Compare", "对比"),
    "jobs.compare_table": ("Runs side by side", "训练对比"),
    "jobs.compare_chart": ("Metric by step, one line per run", "各步指标（每个训练一条线）"),
    "jobs.compare_run": ("run", "训练"),
    "jobs.compare_need": ("Pick one or more finished training runs first.", "请先选择一个或多个已完成的训练任务。"),
    "jobs.cannot_compare": ("Job {job} is {state}: only a completed or cancelled training run can be compared.",
                            "任务 {job} 状态为{state}：只能对比已完成或已取消的训练。"),
    "jobs.compare_no_metrics": ("Job {job} logged no metrics (metrics.jsonl) to compare.",
                                "任务 {job} 没有可对比的指标记录（metrics.jsonl）。"),
    "jobs.compare_no_metric": ("None of these runs logged a task metric or eval_loss: add validation sets to the run.",
                               "这些训练都没有记录任务指标或 eval_loss：请在训练时添加验证集。"),
    "jobs.queued_progress": ("Queued: position {position} in line, starts in {wait}",
                             "排队中：第 {position} 位，预计 {wait} 后开始"),
    # --- evaluate tab ---
    "evaluate.tab": ("Evaluate", "模型评测"),
    "evaluate.intro": (
        "Score the base model and your adapters on validation sets. Multiple choice by **likelihood** (one forward "
        "pass: the highest-scoring option letter; one letter only, so multi-answer items count as wrong) or by "
        "**generation** (the letters read out of the reply); free-form answers by batched greedy generation, scored "
        "with ROUGE-1/2/L and BLEU-4. Results are saved batch by batch: Run again with the same settings to resume "
        "a stopped run or to see finished results again.",
        "在验证集上评测基座模型和你的适配器。选择题可用**似然**（一次前向计算，取得分最高的选项字母；只选一个字母，"
        "多选题计为错误）或**生成**（从回答中提取字母）；问答题批量贪心生成，以 ROUGE-1/2/L 和 BLEU-4 评分。"
        "结果逐批保存：用相同设置再次运行即可续跑已停止的评测，或重新查看已完成的结果。",
    ),
    "evaluate.models": ("Models (base and adapters)", "模型（基座与适配器）"),
    "evaluate.refresh": ("Refresh models", "刷新模型列表"),
    "evaluate.samples": ("Bundled validation sets", "内置验证集"),
    "evaluate.uploads": ("Your validation sets (JSONL, JSON or CSV; multiple choice or free-form)",
                         "你的验证集（JSONL、JSON 或 CSV；选择题或问答题）"),
    "evaluate.method": ("Multiple-choice method", "选择题评测方式"),
    "evaluate.method_choices": ("likelihood|generate", "似然|生成"),
    "evaluate.method_info": ("Likelihood is fast and never unparsed; generate reads the letters from the reply.",
                             "似然速度快且不会无法解析；生成则从回答中提取选项字母。"),
    "evaluate.batch_size": ("Batch size", "批大小"),
    "evaluate.limit": ("First N items per set (0 = all)", "每个数据集前 N 题（0 为全部）"),
    "evaluate.max_new_tokens": ("Max new tokens (free-form)", "最大生成词元数（问答题）"),
    "evaluate.long_items": ("Items longer than the model's context", "超出模型上下文的题目"),
    "evaluate.long_items_info": ("Truncate cuts the prompt from the left (the question's end and the answer cue stay); "
                                 "skip leaves the item unscored. Either way the report counts them.",
                                 "截断：从左侧裁剪提示（保留题目结尾和作答提示）；跳过：该题不计分。两种方式报告中都会计数。"),
    "evaluate.long_items_truncate": ("Truncate", "截断"),
    "evaluate.long_items_skip": ("Skip", "跳过"),
    "evaluate.long_note": ("Longer than the model's context: {counts} (see the results table and report.json).",
                           "超出模型上下文：{counts}（见结果表和 report.json）。"),
    "evaluate.long_truncated": ("{n} item(s) truncated", "{n} 道题已截断"),
    "evaluate.long_skipped": ("{n} item(s) skipped", "{n} 道题已跳过"),
    "evaluate.long_join": (", ", "，"),
    "evaluate.prompt_options": ("Prompt and k-shot examples", "提示词与少样本示例"),
    "evaluate.system": ("System prompt (empty = none)", "系统提示词（留空则不使用）"),
    "evaluate.shots": ("k-shot examples", "少样本示例数"),
    "evaluate.shots_file": ("Examples file (a separate split, same task)", "示例文件（独立划分，同一任务）"),
    "evaluate.run": ("Run", "开始评测"),
    "evaluate.predict": ("Predict a test set (no answers needed)", "预测测试集（无需答案）"),
    "evaluate.predict_info": (
        "Answers every line of a test file with each chosen model and writes the submission in the test file's "
        "shape (every field kept, the answer field filled; JSONL, JSON or CSV like the test file), one file per "
        "model, with the settings beside it. Run again with the same settings to continue an interrupted run; then "
        "check the file in the Score tab with the test file before uploading.",
        "用所选的每个模型回答测试文件的每一行，按测试文件的格式写出提交文件（保留所有字段，填入答案字段；与测试文件同为 "
        "JSONL、JSON 或 CSV），每个模型一个文件，并附上设置。中断后用相同设置再运行即可继续；上传前请在评分页用测试文件检查。"),
    "evaluate.predict_file": ("Test file", "测试文件"),
    "evaluate.answer_field": ("Answer field", "答案字段"),
    "evaluate.mc_output": ("Multiple-choice answers as", "选择题答案写为"),
    "evaluate.mc_output_choices": ("letters|option text|letter and text", "字母|选项文字|字母和文字"),
    "evaluate.predict_run": ("Predict", "开始预测"),
    "evaluate.predict_need_file": ("Upload a test file first.", "请先上传测试文件。"),
    "evaluate.predict_done": ("**Done**: {n} answers per model in {files} file(s){unparsed}.",
                              "**完成**：每个模型 {n} 条答案，共 {files} 个文件{unparsed}。"),
    "evaluate.predict_unparsed": ("; {count} replies had no readable letter and were written empty",
                                  "；{count} 条回答读不出选项字母，已写为空"),
    "evaluate.stop": ("Stop", "停止"),
    "evaluate.results": ("Results: a row per model, a column per set", "结果：每行一个模型，每列一个数据集"),
    "evaluate.chart": ("Scores", "分数"),
    "evaluate.breakdown": ("By category and source", "按类别与来源"),
    "evaluate.item_set": ("Per-item view of set", "逐题查看的数据集"),
    "evaluate.items": ("Per item, models side by side, worst first", "逐题结果，模型并排，最差在前"),
    "evaluate.downloads": ("Downloads: predictions (submission format), per-item rows, reports",
                           "下载：预测文件（提交格式）、逐题结果、报告"),
    "evaluate.need_data": ("Tick a bundled set or upload a validation set.", "请勾选内置验证集或上传验证集。"),
    "evaluate.need_model": ("Tick at least one model.", "请至少勾选一个模型。"),
    "evaluate.progress": ("{model} · {set}: {done}/{total} items, {rate:.1f} items/s, ETA {eta}",
                          "{model} · {set}：{done}/{total} 题，{rate:.1f} 题/秒，预计剩余 {eta}"),
    "evaluate.stopped": ("Stopped. {detail}", "已停止。{detail}"),
    "evaluate.stopping": ("Stopping after the current batch…", "当前批次完成后停止……"),
    "evaluate.nothing_running": ("No evaluation is running.", "没有正在运行的评测。"),
    # No server path: every user of a shared server reads this line (the files are in the downloads box).
    "evaluate.summary": ("**Done**: {models} model(s) × {sets} set(s). Download the files below.",
                         "**完成**：{models} 个模型 × {sets} 个数据集。文件可在下方下载。"),
    # --- footer --- (and the Chat tab's admin-only "Models" box, whose messages the footer repeats)
    "footer.unknown": ("unknown", "未知"),
    "footer.memory": ("**Memory** app {app} · machine {free} free of {total}", "**内存** 本应用 {app} · 本机可用 {free}，共 {total}"),
    "footer.gpu": ("**GPU {index}** {name}: {used} of {total} used (this app {app})",
                   "**GPU {index}** {name}：已用 {used}，共 {total}（本应用 {app}）"),
    "footer.gpu_no_used": ("**GPU {index}** {name}: {total}, this app holds {app}",
                           "**GPU {index}** {name}：共 {total}，本应用占用 {app}"),
    "footer.models": ("**Models in memory** {models}", "**已加载模型** {models}"),
    "footer.models_none": ("**Models in memory** none yet (the base loads on the first question)",
                           "**已加载模型** 暂无（首次提问时加载基座模型）"),
    "footer.model_item": ("{name} ({kind}, {size})", "{name}（{kind}，{size}）"),
    "footer.budget": ("{used} of the {budget} budget", "预算 {budget}，已用 {used}"),
    "footer.last_unload": ("last unloaded: {name} ({reason})", "最近卸载：{name}（{reason}）"),
    "footer.jobs": ("**Jobs** {running} running, {queued} queued", "**任务** 运行中 {running} 个，排队 {queued} 个"),
    "models.manage": ("Load / unload models (admin)", "加载 / 卸载模型（管理员）"),
    "models.intro": (
        "Load a model into memory now, or unload one to free memory (it loads again when someone uses it). "
        "Pick a name, or type an adapter directory or hub id (owner/name). {budget}",
        "立即将模型加载到内存，或卸载以释放内存（有人使用时会重新加载）。"
        "选择名称，或输入适配器目录或 Hub id（owner/name）。{budget}",
    ),
    "models.budget": ("Memory budget: {budget}; beyond it the least recently used adapter is unloaded.",
                      "内存预算：{budget}；超出时卸载最久未使用的适配器。"),
    "models.no_budget": ("No memory budget is set (--memory-budget-gb).", "未设置内存预算（--memory-budget-gb）。"),
    "models.name": ("Model or adapter", "模型或适配器"),
    "models.load": ("Load", "加载"),
    "models.unload": ("Unload", "卸载"),
    "models.need_name": ("Pick a model or adapter first.", "请先选择模型或适配器。"),
    "models.loaded": ("Loaded {name} ({size} in memory).", "已加载 {name}（占用 {size}）。"),
    "models.unloaded_lru": ("Unloaded adapter {name} (least recently used) to stay under the {budget} budget.",
                            "已卸载适配器 {name}（最久未使用），以保持在 {budget} 预算之内。"),
    "models.unloaded_request": ("Unloaded {name} ({size} freed).", "已卸载 {name}（释放 {size}）。"),
    "models.reason_lru": ("least recently used, over the budget", "最久未使用，超出预算"),
    "models.reason_request": ("unloaded by the admin", "管理员卸载"),
    # --- guard (ui/guard.py: sessions and cached files belong to the user who first used them) ---
    "guard.sign_in": ("Sign in first.", "请先登录。"),
    "guard.not_yours": ("This session or file belongs to another user.", "该会话或文件属于其他用户。"),
    "guard.deep_links_off": ("Deep links are turned off on this server.", "此服务器已关闭深度链接。"),
    "guard.too_large": ("The request is too large.", "请求过大。"),
    # --- problems (ui/problems.py): where a problem is; what it says is safeio.problems.MESSAGES, merged below
    "problem.where": ("line {line}: ", "第 {line} 行："),
    "problem.where_file": ("{file}:{line}: ", "{file} 第 {line} 行："),
    "score.what_if": ("What if (free-form post-processing)", "假设分析（自由问答后处理）"),
    "score.what_if_info": ("ROUGE/BLEU with each post-processing option off and on, lengths learnt from the reference.",
                           "每个后处理选项关闭与开启时的 ROUGE/BLEU，长度取自参考答案。"),
    "score.what_if_col": ("post-processing", "后处理"),
    "evaluate.postprocess": ("Free-form post-processing (comma-separated, e.g. strip_markdown, fit=150)",
                             "自由问答后处理（逗号分隔，如 strip_markdown, fit=150）"),
    "score.checked": ("**Checked against the test file, not scored** (the reference has no answers; {n} items). "
                      "{status}",
                      "**已按测试文件检查，未评分**（参考文件没有答案；共 {n} 题）。{status}"),

    # --- page (ui/polish.py, ui/page_lang.py): table headers on the Chinese page, chart axes and legends ---
    "col.severity": ("severity", "严重程度"),
    "col.line": ("line", "行号"),
    "col.id": ("id", "编号"),
    "col.kind": ("kind", "类型"),
    "col.message": ("message", "说明"),
    "col.fix": ("fix", "修改方法"),
    "col.field": ("field", "字段"),
    "col.reason": ("reason", "原因"),
    "col.correct": ("correct", "正确"),
    "col.status": ("status", "状态"),
    "col.answer": ("answer", "答案"),
    "col.extracted": ("extracted", "提取的答案"),
    "col.prediction": ("prediction", "预测"),
    "col.question": ("question", "题目"),
    "col.reference": ("reference", "参考答案"),
    "col.input": ("input", "输入"),
    "col.model": ("model", "模型"),
    "col.set": ("set", "数据集"),
    "col.by": ("by", "分组方式"),
    "col.group": ("group", "分组"),
    "col.n": ("n", "题数"),
    "col.accuracy": ("accuracy", "准确率"),
    "col.unparsed": ("unparsed", "无法解析"),
    "col.truncated": ("truncated", "超出上下文（已从左截断）"),
    "col.skipped": ("skipped", "超出上下文（已跳过）"),
    "finetune.highlight_trained": ("trained", "参与训练"),
    "finetune.axis_step": ("step", "步数"),
    "finetune.axis_loss": ("loss", "损失"),
    "finetune.axis_series": ("data", "数据"),
    "finetune.series_train": ("train", "训练集"),
    "finetune.series_validation": ("validation", "验证集"),
    "evaluate.axis_score": ("score", "分数"),
    "page.search": ("Search...", "搜索…"),
    "page.filter": ("Filter...", "筛选…"),
    # gradio's status line over a running event's outputs (ui/page_lang.py rewrites its English on the Chinese page)
    "page.processing": ("processing", "处理中"),
    "page.queue": ("queue:", "排队："),
    "page.from_cache": ("from cache", "来自缓存"),
    "page.used_cache": ("used cache", "使用缓存"),
    # --- model picker (ui/model_picker.py) ---
    "picker.presets": ("Ready-made settings for this model (fills the form)", "该模型的预设参数（自动填入下方表单）"),
    "picker.catalog": ("Known models: size, memory, fits this machine, downloaded", "常用模型：规模、内存、本机能否运行、是否已下载"),
    "picker.col_model": ("model", "模型"),
    "picker.col_params": ("parameters", "参数量"),
    "picker.col_bf16": ("memory (bf16)", "内存（bf16）"),
    "picker.col_4bit": ("memory (4-bit, GPU only)", "显存（4 比特，仅 GPU）"),
    "picker.fits_in_4bit": (" (4-bit)", "（4 比特）"),
    "picker.col_fits": ("fits now", "当前可运行"),
    "picker.col_cached": ("downloaded", "已下载"),
    "picker.yes": ("yes", "是"),
    "picker.no": ("no", "否"),
    "picker.unknown": ("unknown", "未知"),
    "picker.demo": (
        "**demo**: the built-in tiny model (works offline, knows no medicine). Pick a real model below or type a hub "
        "id (owner/name) or a local folder.",
        "**demo**：内置极小模型（离线可用，不具备医学知识）。可在下方选择真实模型，或输入 Hub ID（owner/name）或本地目录。",
    ),
    "picker.size": ("{params} B parameters · {bf16} to chat in bf16, {four} in 4-bit",
                    "参数量 {params} B · bf16 对话约需 {bf16}，4 比特约需 {four}"),
    "picker.size_unknown": ("size unknown until it is downloaded", "下载后才能得知规模"),
    "picker.fits": ("fits the free {where} ({free})", "可放入当前空闲{where}（{free}）"),
    "picker.does_not_fit": ("does NOT fit the free {where} ({free}) in bf16", "bf16 下放不进当前空闲{where}（{free}）"),
    "picker.unknown_free": ("free {where} unknown", "空闲{where}未知"),
    "picker.where_gpu": ("GPU memory", "显存"),
    "picker.where_ram": ("memory", "内存"),
    "picker.local": ("a local folder", "本地目录"),
    "picker.cached": ("downloaded ✓", "已下载 ✓"),
    "picker.not_cached": ("not downloaded yet (the admin can download it below)", "尚未下载（管理员可在下方下载）"),
    "picker.offline": (
        "downloads are unavailable: this server is offline (HF_HUB_OFFLINE); choose a downloaded model",
        "无法下载：本服务器处于离线模式（HF_HUB_OFFLINE），请选择已下载的模型",
    ),
    "picker.offline_note": (
        "This server is offline: downloads are unavailable. The list offers what is already downloaded.",
        "本服务器处于离线模式，无法下载。列表中可选择已下载的模型。",
    ),
    "picker.online_note": (
        "Downloads come from Hugging Face, or the mirror in HF_ENDPOINT (e.g. https://hf-mirror.com).",
        "模型从 Hugging Face 下载，或从 HF_ENDPOINT 指定的镜像下载（如 https://hf-mirror.com）。",
    ),
    "picker.remote_code": ("runs its own model code (trust_remote_code)", "需运行模型自带代码（trust_remote_code）"),
    "picker.gated": ("gated: accept its licence on the hub and set HF_TOKEN", "受限模型：需在 Hub 上同意许可并设置 HF_TOKEN"),
    "picker.download": ("Download the chosen model", "下载所选模型"),
    "picker.cancel": ("Cancel download", "取消下载"),
    "picker.delete": ("Delete from the cache", "从缓存中删除"),
    "picker.downloading": ("Downloading… {done} so far", "下载中……已下载 {done}"),
    "picker.downloading_of": ("Downloading… {done} of {total} ({pct}%)", "下载中……{done} / {total}（{pct}%）"),
    "picker.download_completed": ("Downloaded ✓", "下载完成 ✓"),
    "picker.download_cancelled": ("Download cancelled (what arrived is kept and resumed next time).",
                                  "已取消下载（已下载部分会保留，下次继续）。"),
    "picker.download_not_found": ("no such model on the hub (or it is private)", "Hub 上没有这个模型（或它是私有的）"),
    "picker.download_gated": ("the model is gated: accept its licence on its hub page and log in",
                              "该模型需要授权：请在其 Hub 页面接受许可并登录"),
    "picker.download_network": ("the hub (or the HF_ENDPOINT mirror) cannot be reached",
                                "无法连接 Hub（或 HF_ENDPOINT 镜像）"),
    "picker.download_disk_full": ("the disk is full", "磁盘空间已满"),
    "picker.download_other": ("the download stopped with an error", "下载因错误中止"),
    "picker.download_failed": ("Download failed: {reason}", "下载失败：{reason}"),
    "picker.need_hub_id": ("Choose or type a hub id (owner/name) to download.", "请选择或输入要下载的 Hub ID（owner/name）。"),
    "picker.delete_running": ("Cancel its download first.", "请先取消其下载。"),
    "picker.deleted": ("Deleted {model} from the cache ({freed} freed).", "已从缓存删除 {model}（释放 {freed}）。"),
    "picker.not_cached_here": ("{model} is not in the cache.", "{model} 不在缓存中。"),
    # --- Hugging Face Space (ui/zerogpu.py) ---
    "space.zerogpu_no_training": (
        "Training is not available on this ZeroGPU Space: it lends a GPU for a few minutes per request, too short "
        "for a training run. Duplicate the Space on dedicated GPU hardware (or run `python -m finetune train` on "
        "your own machine) to train; chatting and evaluating work here.",
        "本 ZeroGPU Space 不支持训练：它每次请求只借出几分钟 GPU，不足以完成一次训练。若要训练，请将 Space 复制到"
        "独占 GPU 硬件上（或在自己的机器上运行 `python -m finetune train`）；对话和评测可在此使用。",
    ),
    # --- a model refused before loading (models/preflight.py; same parameters as its English MESSAGES) ---
    "preflight.unknown_architecture": (
        "Model {model}: architecture {model_type!r} is unknown to this transformers ({transformers}). Upgrade "
        "transformers (pip install -U transformers), or choose a model of a supported family (Qwen2.5/Qwen3, Llama, "
        "GLM-4, InternLM3, ...).",
        "模型 {model}：当前 transformers（{transformers}）不认识其架构 {model_type!r}。请升级 transformers"
        "（pip install -U transformers），或选择受支持系列的模型（Qwen2.5/Qwen3、Llama、GLM-4、InternLM3 等）。",
    ),
    "preflight.remote_code": (
        "Model {model}: its config.json loads its own Python code (auto_map: {classes}), which would run code from "
        "the model's authors on this server. The app never runs a model's own code; only if you trust them, use the command-line tools "
        "with --trust-remote-code.",
        "模型 {model}：其 config.json 会加载模型作者自带的 Python 代码（auto_map：{classes}），这些代码将在本服务器上"
        "运行。本应用从不运行模型自带的代码；仅当您信任作者时，才可在命令行工具中加上 --trust-remote-code。",
    ),
    "preflight.too_large": (
        "Model {model}: about {params} parameters need about {needed} in {dtype} on {device} (weights {weights} + "
        "{overhead}% overhead), but only {free} is free. Choose a smaller model, free memory, or train it in 4-bit on "
        "a GPU (--load-in-4bit).",
        "模型 {model}：约 {params} 个参数，以 {dtype} 在 {device} 上约需 {needed}（权重 {weights} + {overhead}% 额外开销），"
        "但只剩 {free} 可用。请选择更小的模型、释放内存，或在 GPU 上以 4 位训练（--load-in-4bit）。",
    ),
    "preflight.no_chat_template": (
        "Model {model}: its tokenizer has no chat template, so the project's ChatML template is used (right for "
        "fine-tuning a base model; for a chat model, use the variant that ships its template).",
        "模型 {model}：其分词器没有对话模板，因此使用本项目的 ChatML 模板（适合微调基座模型；若是对话模型，请使用自带"
        "模板的版本）。",
    ),
    "preflight.no_config": (
        "Model {model}: no readable config.json ({reason}). Give a model directory or hub id that has one.",
        "模型 {model}：无法读取 config.json（{reason}）。请提供包含该文件的模型目录或 Hub ID。",
    ),
    "finetune.command_head": ("run.yaml (save this whole text), then run:", "run.yaml（保存以下全部文本），然后运行："),
    "preflight.cause_json": ("config.json is not valid JSON", "config.json 不是有效的 JSON"),
    "preflight.cause_io": ("the file cannot be read or fetched", "文件无法读取或下载"),
    "chat.tick_models": ("tick between 1 and {n} models (ticked {ticked})", "请勾选 1 至 {n} 个模型（当前勾选了 {ticked} 个）。"),
    "chat.models_gone": ("model(s) no longer available: {models}; press Refresh",
                         "这些模型已不可用：{models}；请点击“刷新模型列表”。"),
    "chat.blind_need_two": ("a blind test needs at least two models: train an adapter in the Fine-tune tab first",
                            "盲测至少需要两个模型：请先在“微调”页训练一个适配器。"),
    "chat.blind_voted": ("this battle has been voted on already; start a new battle", "这一轮已经投过票了，请开始新一轮对战。"),
    "chat.blind_need_answers": ("ask a question and read both answers before voting", "请先提问并读完两个回答，再投票。"),
    "chat.bad_settings": ("Decoding settings out of range.", "解码参数超出允许范围，请检查各项的取值。"),
    "chat.bad_outcome": ("outcome must be one of {outcomes}, got {outcome}", "投票结果必须是 {outcomes} 之一，而不是 {outcome}。"),
    "finetune.dropped_row": ("no answer token left within cutoff_len={cutoff}",
                             "在截断长度 cutoff_len={cutoff} 内没有留下任何回答 token，整行被丢弃。"),
    "chat.chart_title": ("Ratings with 95% intervals", "评分及 95% 置信区间"),
    "chat.chart_axis": ("Bradley–Terry rating (bootstrap 95% interval)", "Bradley–Terry 评分（自助法 95% 区间）"),
}

# The sentence of every backend problem code, EN and ZH, lives beside the codes (safeio.problems: the command
# lines print the English without importing ui/); the page reads them here as "problem.<code>" and
# "problem_fix.<code>", so there is one table of them, not two.
STRINGS.update({f"problem.{code}": text for code, text in PROBLEM_MESSAGES.items()})
STRINGS.update({f"problem_fix.{code}": text for code, text in PROBLEM_FIXES.items()})


def t(key: str, lang: str = "en") -> str:
    english, chinese = STRINGS[key]
    return chinese if lang == "zh" else english

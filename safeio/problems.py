"""The one problem type: something wrong with a user's file (training data, an evaluation set, a reference,
predictions, the users file), said as data, and the one table of what each problem code says.

`kind` is a short code for tables and exit statuses ("bad_json", "missing_prediction", "bad_output", ...) and
`params` the values a sentence about it needs; `say` names the sentence in MESSAGES when it is finer than the kind
(a finetune row is always kind "bad_field", but "missing" and "expected a list" are different sentences).
`message` is the English sentence (rendered from MESSAGES when the problem is raised as a ProblemError; written by
the backend where the English column is "{message}"); the command lines print it. The app renders the same code in the page's language (ui/problems.py
reads MESSAGES through ui/strings.py, which takes every entry of it as "problem.<code>"), so a sentence is written
once, in both languages, here beside its code. A code that has no entry keeps its English message.
"""

from __future__ import annotations

from dataclasses import dataclass, field as dataclass_field
from typing import Any

# code -> (English, Chinese). {field}, {line}, {id} and the problem's params fill them. "{message}" in the English
# column means the backend still writes its own English sentence (evaluation's alignment checks, which carry
# their numbers as params); the Chinese column is then the sentence the app shows.
MESSAGES: dict[str, tuple[str, str]] = {
    # --- the bounded readers (safeio): a file or a row that cannot be read ---
    "encoding": ("{message}", "文件不是 UTF-8 编码（第 {line} 行起无法解码），可能是 GBK/GB18030。"),
    "bad_json": ("{message}", "不是有效的 JSON（第 {column} 列）。"),
    "not_object": ("{message}", "这一行不是 JSON 对象，而是{type}。"),
    "bad_csv": ("{message}", "CSV 格式有误。"),
    # finer sentences of the kinds above (a reader's `params["say"]`)
    "utf32": ("{message}", "文件是 UTF-32 编码，请另存为 UTF-8。"),
    "utf16": ("{message}", "文件是 UTF-16 编码（Excel 的“Unicode 文本”），请另存为 UTF-8（Excel：“CSV UTF-8”）。"),
    "zip_not_text": ("{message}", "这是一个 zip 压缩包（.xlsx 工作簿？），不是文本：请另存为 CSV UTF-8 或 JSON Lines。"),
    "binary": ("{message}", "第 {byte} 个字节是 NUL：这是二进制文件，而不是文本（JSONL、JSON 或 CSV）。"),
    "surrogate": ("{message}", "含有不成对的代理字符（UTF-16 代理项的转义），不是有效的 Unicode 文本。"),
    "file_grew": ("{message}", "读取时文件仍在变大，请等它写完后再试。"),
    "one_object": ("{message}", "整个文件是一个跨多行的 JSON 对象（字段：{keys}），而不是逐行的数据：请每行写一个对象"
                                "（JSONL），或写成数组 [ {{...}}, {{...}} ]。"),
    "csv_unclosed_quote": ("{message}", "这一行开始的引号没有闭合（文件其余部分会变成一个值）：请闭合引号，值中的引号"
                                        "请写两次（\"\"）。"),
    "csv_extra_cells": ("{message}", "单元格比表头的列多：含逗号的单元格请加引号。"),
    "empty_file": ("{message}", "文件是空的，没有任何数据行。"),
    "missing_file": ("{message}", "找不到该文件，或无法读取。"),
    "not_a_file": ("{message}", "这不是一个普通的数据文件（可能是文件夹或设备）。"),
    "limit": ("{message}", "{limit}超出读取限制（上限 {value}，可用 {flag} 放宽）。"),
    "missing_column": ("{message}", "column_map 中 “{target}” 对应的列 {column} 在表头中不存在。"),
    "bad_xlsx": ("{message}", "无法读取这个 .xlsx 工作簿（文件损坏、截断或不是工作簿）。"),
    "bad_yaml": ("{message}", "不是有效的 YAML。"),
    # --- evaluation rows (evaluation/data.py): kind "bad_<field>" ---
    "bad_field": ("{message}", "字段“{field}”有误：{message}"),  # a row problem built without a finer code
    "not_string": ("field '{field}' must be a string, got {type} {value}", "字段“{field}”必须是字符串，而不是{type}。"),
    "missing_fields": ("missing field {wanted} (fields present: {found})", "缺少字段 {wanted}（现有字段：{found}）。"),
    "options_not_letters": ("options must map letters A–F to option texts", "options 必须把字母 A–F 对应到选项文本。"),
    "too_many_options": ("at most {limit} options are supported, got {count}", "最多支持 {limit} 个选项，这里有 {count} 个。"),
    "options_unreadable": ("cannot read the options from {value}", "无法从 {value} 中读出选项。"),
    "answer_not_string": ("field '{field}' must be a string of letters, got {type}",
                          "字段“{field}”必须是由选项字母组成的字符串，而不是{type}。"),
    "answer_not_letters": ("answer {value} is not one to {limit} option letters",
                           "答案 {value} 不是 1 到 {limit} 个选项字母。"),
    "answer_unknown_option": ("answer {value} names option {letters}, which the item does not have",
                              "答案 {value} 中的选项 {letters} 不在本题的选项中。"),
    "no_options": ("no options found: expected an 'options' field or option lines like 'A. ...' at the end of the "
                   "question", "找不到选项：需要 options 字段，或在题干末尾按 “A. ...” 逐行列出选项。"),
    # --- training rows (finetune/formats.py): kind "bad_field", the field is a JSON path ---
    "missing": ("missing", "缺少该字段。"),
    "expected_string": ("expected a string, got {type} ({value})", "应为字符串，而不是{type}（{value}）。"),
    "expected_list": ("expected a list, got {type}", "应为列表，而不是{type}。"),
    "empty_list": ("empty list", "列表为空。"),
    "expected_object": ("expected an object, got {type}", "应为对象，而不是{type}。"),
    "expected_pairs": ("expected a list of [question, answer] pairs, got {type}",
                       "应为 [问题, 回答] 对的列表，而不是{type}。"),
    "expected_pair": ("expected a [question, answer] pair of strings", "应为由两个字符串组成的 [问题, 回答] 对。"),
    "unknown_speaker": ("unknown role {role} (expected one of {roles})", "未知角色 {role}（应为 {roles} 之一）。"),
    "empty_text": ("empty text", "文本为空。"),
    "system_not_first": ("a system message is only allowed first", "系统消息只能放在第一条。"),
    "turn_order": ("expected a {expected} turn here, got {got} (turns must alternate user/assistant)",
                   "这里应是{expected}的发言，却是{got}的（用户与助手须轮流发言）。"),
    "no_final_answer": ("the conversation must end with an assistant answer", "对话必须以助手的回答结尾。"),
    "duplicate_of": ("duplicate of line {first}", "与第 {first} 行重复。"),  # a training row seen before
    "duplicate_row": ("{message}", "与第 {first} 行重复，但测试文件在这两行是不同的题目。"),
    # --- a training data file as a whole (finetune/formats.py DataError) ---
    "unsupported_type": ("{message}", "不支持这种文件类型（{name}）：请用 .jsonl、.json、.csv 或 .xlsx 文件。"),
    "unknown_format": ("{message}", "未知的数据格式 {format}（应为 auto 或 {formats} 之一）。"),
    "unknown_data_format": ("{message}", "无法从字段 {fields} 判断数据格式：应为 {formats} 之一，或用列映射指定列。"),
    "no_readable_row": ("{message}", "文件中没有一行可用的数据（共读到 {rows} 行）。"),
    "column_map_json": ("{message}", "列映射不是有效的 JSON。"),
    "column_map_entry": ("{message}", "列映射中的 {part} 不是 字段=列名 的形式。"),
    "column_map_names": ("{message}", "列映射的每一项都必须把字段名对应到列名。"),
    # --- training settings (finetune/config.py ConfigError); `field` is the setting ---
    "config": ("{message}", "训练设置有误：设置项 {field}。"),  # the kind; each refusal has a finer sentence below
    "config_empty_model": ("{message}", "设置项 {field}：不能为空，请填写 Hub ID、本地目录或 demo。"),
    "config_no_data": ("{message}", "设置项 {field}：没有指定数据文件。"),
    "config_no_file": ("{message}", "设置项 {field}：文件 {name} 不存在。"),
    "config_epochs": ("{message}", "设置项 {field}：max_steps 为 0 时必须大于 0。"),
    "config_pack_len": ("{message}", "设置项 {field}：必须为 0 或不小于 cutoff_len（{cutoff}）。"),
    "config_name": ("{message}", "设置项 {field}：只能使用字母、数字和 . _ -（它会成为目录名）。"),
    "config_lora_targets": ("{message}", "设置项 {field}：应为 all-linear、attention，或逗号分隔的模块名，如 q_proj,v_proj。"),
    "config_unknown_setting": ("{message}", "设置项 {field}：没有这个设置项。"),
    "config_unreadable": ("{message}", "无法读取配置文件。"),
    "config_not_mapping": ("{message}", "配置文件应是“设置项: 值”的映射。"),
    "config_eval_entry": ("{message}", "设置项 {field}：应为文件路径，或含 path（以及 name、task）的映射。"),
    "config_eval_key": ("{message}", "设置项 {field}：未知的键（可用的键：path、name、task）。"),
    "config_eval_name": ("{message}", "设置项 {field}：{name} 只能使用字母、数字和 . _ -。"),
    "config_eval_task": ("{message}", "设置项 {field}：{task} 应为任务名，如 mc 或 qa。"),
    "config_select_by": ("{message}", "设置项 {field}：{value} 应为 accuracy:集合名、rouge-l:集合名 或 eval_loss。"),
    "config_select_needs_split": ("{message}", "设置项 {field}：eval_loss 需要划出验证集（val_split > 0）。"),
    "config_select_needs_sets": ("{message}", "设置项 {field}：{value} 需要验证集（eval_sets / --eval-data）。"),
    "config_eval_processes": ("{message}", "训练中的任务指标只能在单进程下计算：请把 processes 设为 1，或去掉 eval_sets。"),
    "config_qlora_cuda": ("{message}", "4 比特（QLoRA）需要 CUDA GPU，而本机没有：请取消勾选，在本机用普通 LoRA 训练。"),
    "config_qlora_bnb": ("{message}", "4 比特（QLoRA）需要 bitsandbytes：pip install bitsandbytes"),
    "config_processes": ("{message}", "设置项 {field}：{n} 个进程需要 {n} 块 GPU，本机只有 {gpus} 块。"),
    "config_type": ("{message}", "设置项 {field}：应为{expected}，而不是{type}（{value}）。"),
    "config_prompts": ("{message}", "设置项 {field}：应为字符串列表。"),
    "config_column_map": ("{message}", "设置项 {field}：应为字段名到列名的映射。"),
    "config_one_of": ("{message}", "设置项 {field}：{value} 不是 {allowed} 之一。"),
    "config_between": ("{message}", "设置项 {field}：必须在 {low} 到 {high} 之间，当前为 {value}。"),
    "config_at_least": ("{message}", "设置项 {field}：必须不小于 {low}，当前为 {value}。"),
    # the validation sets scored during training (jobs/train_eval.py) and the job folder (jobs/files.py)
    "config_eval_empty": ("{message}", "设置项 {field}：验证集 {name} 中没有可评测的题目。"),
    "config_eval_task_mismatch": ("{message}", "设置项 {field}：验证集 {name} 读出来是 {got} 类题集，但 {why} 要求 "
                                               "{expected} 类。"),
    "config_eval_duplicate": ("{message}", "设置项 {field}：有两个验证集都叫 {name}，请给其中一个设置 name。"),
    "config_select_no_set": ("{message}", "设置项 {field}：{value} 没有对应的验证集（现有验证集：{sets}）。"),
    "config_select_metric": ("{message}", "设置项 {field}：未知指标 {metric}（可用：{known}，或 eval_loss）。"),
    "config_adapter_exists": ("{message}", "设置项 {field}：已有名为 {name} 的适配器，请换一个名字。"),
    # --- the job queue (jobs/store.py, jobs/scheduler.py, jobs/files.py, jobs/process.py) ---
    "job_kind_unknown": ("{message}", "未知的任务类型 {kind}（可用：{known}）。"),
    "job_exists": ("{message}", "队列中已有任务 {job}。"),
    "job_busy": ("{message}", "任务 {job} 正在由进程 {pid} 训练：同一任务同时只能由一个进程训练。请先停止它"
                              "（python -m finetune stop {job}），或等它结束。"),
    "job_busy_unknown": ("{message}", "任务 {job} 正在由另一个进程训练：同一任务同时只能由一个进程训练。请先停止它"
                                      "（python -m finetune stop {job}），或等它结束。"),
    # --- scores and models (evaluation/submission.py WeightsError, finetune/preview.py ModelLoadError) ---
    "weights_not_pair": ("{message}", "权重 {part} 不是 指标名=数值 的形式。"),
    "weights_bad_metric": ("{message}", "权重 {name} 应为 {allowed} 之一，且是不小于 0 的有限数（当前为 {value}）。"),
    "weights_all_zero": ("{message}", "至少要有一个权重大于 0。"),
    # --- an evaluation's settings (evaluation/run.py EvalError) ---
    "eval_setting": ("{message}", "设置项 {name}：{value} 不可用（允许：{allowed}）。"),
    "eval_shots_file": ("{message}", "示例数（shots）大于 0 时需要一个示例文件（shots_data），它与被评测的题集分开，"
                                     "以免题目和它自己的答案一起出现。"),
    "eval_no_items": ("{message}", "题集 {name} 中没有可评测的题目。"),
    "eval_few_shots": ("{message}", "要求 {k} 个示例（shots），但示例文件 {name} 只有 {count} 道题。"),
    "eval_shots_task": ("{message}", "示例数为 {shots}，但缺少 {tasks} 类题目的示例文件：每类任务（mc 和/或 qa）各给一个"
                                     "示例文件（shots_data）。"),
    "eval_one_base": ("{message}", "--model 只能指定一个基座模型；适配器请用 --adapter 添加（可重复）。"),
    "eval_adapter_remote": ("{message}", "--adapter 用于本进程内的适配器；端点上的模型请用 --model 指定。"),
    "predict_no_items": ("{message}", "测试文件 {name} 中没有要回答的题目。"),
    "predict_out_is_data": ("{message}", "输出文件 {name} 就是测试文件本身，请换一个名字。"),
    "predict_no_fit": ("{message}", "第 {line} 行：即使去掉题目，提示也放不进模型 {limit} 个词元的上下文（还需留出 {max_new} "
                                    "个新词元）；请调小最大生成词元数（max_new_tokens）。"),
    "tokenizer_unavailable": ("{message}", "无法加载模型 {model} 的分词器：离线时该 Hub ID 尚未缓存、ID 不存在，或目录中"
                                           "没有分词器文件。"),
    # --- predictions and submissions against a reference (evaluation/submission.py, evaluation/check.py) ---
    "unknown_id": ("{message}", "id “{id}” 不在参考答案中。"),
    "duplicate_id": ("{message}", "id “{id}” 重复（第 {first} 行已使用），只计第一条。"),
    "missing_prediction": ("{message}", "缺少对参考答案第 {ref_line} 行的预测，按错误/空答案计分。"),
    "input_mismatch": ("{message}", "input 与参考答案第 {ref_line} 行不一致。"),
    "extra_row": ("{message}", "超出参考答案的 {n} 条：多余的行。"),
    "id_mismatch": ("{message}", "只有部分行带 id，因此按行序对齐。"),
    "answer_too_long": ("{message}", "字段“output”：答案有 {chars} 个字符，只评测前 {limit} 个。"),
    "empty_output": ("{message}", "答案为空，计为错误 / 0 分。"),
    "unparsed_answer": ("{message}", "无法从 “{text}” 中读出选项字母，按错误计分。"),
    "empty_reference": ("{message}", "字段“output”：参考答案为空。"),
    "field_changed": ("{message}", "字段“{field}”与测试文件第 {ref_line} 行不一致：请原样保留测试文件的字段。"),
    "missing_answer": ("{message}", "缺少答案字段“{field}”。"),
    "bad_answer_type": ("{message}", "答案字段“{field}”必须是字符串。"),
    "not_letters": ("{message}", "答案字段“{field}”不是选项字母：“{text}”。"),
    "letter_not_option": ("{message}", "答案中的选项 {letters} 不在本题的选项中。"),
    "repeated_letter": ("{message}", "答案字段“{field}”中有重复的字母。"),
    "replacement_char": ("{message}", "答案字段“{field}”含有 U+FFFD（�），说明文本曾以错误的编码解码。"),
    # --- the users file (hosting/users.py); `file` is "users file PATH" or the variable it came from ---
    "user_name_not_text": ("{message}", "用户名 {user} 必须是文本（在 YAML 中加上引号）。"),
    "bad_user_name": ("{message}", "用户名 “{user}” 只能包含字母、数字和 . _ @ -（1 到 64 个字符）。"),
    "unknown_role": ("{message}", "用户 “{user}” 的角色 “{value}” 无效（应为 {allowed} 之一）。"),
    "unreadable": ("{message}", "无法读取该文件。"),
    "bad_users_top": ("{message}", "顶层必须只有一个键 users（用户名到 {{role, password}} 的映射）。"),
    "bad_users_field": ("{message}", "字段 users 必须是用户名到 {{role, password}} 的映射，而不是{found}。"),
    "bad_user_entry": ("{message}", "用户 “{user}” 必须是含有 role 和 password 字段的映射。"),
    "unknown_field": ("{message}", "用户 “{user}” 有未知字段 “{field}”（只允许 role、password）。"),
    "missing_field": ("{message}", "用户 “{user}” 缺少字段 “{field}”。"),
    "bad_password_hash": ("{message}", "用户 “{user}” 的 password 不是有效的密码哈希，请用 "
                          "`python -m hosting.users add` 重新设置。"),
    "bad_users_entry": ("{message}", "应写成 NAME:ROLE:PASSWORD（多个条目用逗号分隔）。"),
    "empty_password": ("{message}", "用户 “{user}” 的密码为空。"),
    "no_users": ("{message}", "用户文件中没有用户，没有人能登录（用 `python -m hosting.users add` 添加）。"),
}

# code -> (English, Chinese) of what to do about it; only codes with a useful fix are here.
FIXES: dict[str, tuple[str, str]] = {
    "encoding": ("", "请将文件另存为 UTF-8，例如 `iconv -f GB18030 -t UTF-8 in.jsonl > out.jsonl`。"),
    "bad_json": ("", "每行必须是一个完整的 JSON 对象（检查引号、逗号和括号），或整个文件是一个对象数组。"),
    "unknown_id": ("", "删除这一行或改正其 id。"),
    "duplicate_id": ("", "每个 id 只保留一个答案。"),
    "missing_prediction": ("", "为这一题补上一行预测。"),
    "input_mismatch": ("", "预测须与参考答案同序，每题一行。"),
    "extra_row": ("", "删除多余的行：每道参考题恰好一条预测。"),
    "empty_output": ("", "检查这一题的生成是否完成。"),
    "unparsed_answer": ("", "请用选项字母作答，如 “B” 或 “BD”。"),
    "answer_too_long": ("", "只提交模型的答案本身；如确需更长的答案，调大 --max-answer-chars。"),
    "empty_file": ("", "请重新导出数据，文件中没有数据行。"),
    "limit": ("", "拆分文件、缩短内容，或用提示中的参数 / 环境变量放宽限制。"),
    "bad_field": ("", "请按提示改正该字段。"),
    "missing_file": ("", "请检查文件路径。"),
    "not_a_file": ("", "请给出一个数据文件的路径。"),
    "not_object": ("", '每一行必须是一个对象，例如 {{"id": ..., "output": ...}}。'),
    "bad_csv": ("", '检查引号：值中的引号写两次（""），含逗号的单元格要加引号。'),
    "utf32": ("", "请另存为 UTF-8。"),
    "utf16": ("", "在 Excel 中另存为“CSV UTF-8”，或用 `iconv -f UTF-16 -t UTF-8 in.csv > out.csv` 转换。"),
    "zip_not_text": ("", "在 Excel 中另存为“CSV UTF-8”，或导出为 JSON Lines。"),
    "binary": ("", "请上传文本数据文件（JSONL、JSON 或 CSV）。"),
    "surrogate": ("", "请用 UTF-8 重新导出文件，不要写入单独的 \\u 代理项转义。"),
    "file_grew": ("", "等文件写完后再试。"),
    "one_object": ("", "每行写一个对象（JSONL），或把整个文件写成对象数组。"),
    "csv_unclosed_quote": ("", '闭合这个引号；值中的引号请写两次（""）。'),
    "csv_extra_cells": ("", "给含逗号的单元格加上引号，或删去多余的单元格。"),
    "duplicate_row": ("", "每道测试题一行，按测试文件的顺序。"),
    "field_changed": ("", "原样保留测试文件的字段，并保持测试文件的顺序。"),
    "missing_answer": ("", '每一行都需要 "{field}": "<你的答案>"。'),
    "bad_answer_type": ("", '请给答案加上引号，例如 "{field}": "B"。'),
    "replacement_char": ("", "重新生成答案，或把答案另存为 UTF-8。"),
    "not_letters": ("", '只写选项字母，如 "B" 或 "BD"（python -m evaluation predict --mc-output letters）。'),
    "letter_not_option": ("", "只能在本题的选项中选择。"),
    "repeated_letter": ("", "每个字母只写一次。"),
    "empty_reference": ("", "每道参考题都需要非空的答案：对着空答案无法计算 ROUGE 和 BLEU。"),
    "id_mismatch": ("", "两个文件要么每行都有 id，要么都没有。"),
    "expected_string": ("", "请把这个值写成字符串（加引号）。"),
    "unknown_speaker": ("", "请使用上面列出的角色名。"),
    "turn_order": ("", "用户与助手须轮流发言，以助手的回答结尾。"),
    "no_final_answer": ("", "在对话末尾加上助手的回答。"),
    "missing": ("", "请补上这个字段，或用列映射指定它对应的列。"),
    "not_string": ('write it in quotes, e.g. "{field}": "{example}"', "请给值加上引号，写成字符串。"),
    "options_not_letters": ('e.g. "options": {{"A": "...", "B": "..."}}', '例如 "options": {{"A": "...", "B": "..."}}'),
    "options_unreadable": ('give a dict {{"A": ..., "B": ...}}, a list of texts, or lines "A. ...\\nB. ..."',
                           '请写成对象 {{"A": ..., "B": ...}}、文本列表，或 “A. ...\\nB. ...” 这样的行。'),
    "answer_not_letters": ('write the answer as letters, e.g. "B" or "BD"', "请用选项字母作答，如 “B” 或 “BD”。"),
    "answer_unknown_option": ("the options are {options}", "本题的选项是 {options}。"),
    "no_options": ("put each option on its own line: A. ..., B. ..., in order", "每个选项单独一行：A. ...、B. ...，按顺序排列。"),
}

# Words that stand as values in a sentence (a JSON type, a speaker) in each language: params named here go through it.
WORDS: dict[str, tuple[str, str]] = {
    "str": ("str", "字符串"), "int": ("int", "整数"), "float": ("float", "小数"), "bool": ("bool", "布尔值"),
    "list": ("list", "列表"), "dict": ("dict", "对象"), "NoneType": ("NoneType", "空值（null）"),
    "user": ("user", "用户"), "assistant": ("assistant", "助手"), "system": ("system", "系统"),
}
# The bounded readers' limits (safeio.limits.SETTINGS), named in a "limit" problem.
WORDS.update({
    "max_bytes": ("file size", "文件大小"), "max_rows": ("rows", "行数"), "max_columns": ("columns", "列数"),
    "max_line_bytes": ("line length", "单行长度"), "max_field_chars": ("field length", "字段长度"),
    "max_xlsx_part_bytes": ("xlsx part size", ".xlsx 单个部件的解压大小"),
    "max_xlsx_total_bytes": ("xlsx size", ".xlsx 的解压总大小"), "max_json_depth": ("JSON depth", "JSON 嵌套层数"),
    "max_int_digits": ("integer digits", "整数位数"),
})
WORD_PARAMS = ("type", "expected", "got", "found", "limit")


def render(code: str, lang: str, values: dict[str, Any], table: dict[str, tuple[str, str]] | None = None) -> str | None:
    """The sentence of `code` in `lang` ("en" or "zh") filled from `values`; None when the code has no sentence, a
    sentence wants a value that is not there, or the English column defers to the backend's message."""
    entry = (MESSAGES if table is None else table).get(code)
    template = entry and entry[1 if lang == "zh" else 0]
    if template == "{message}":  # the backend's own English sentence, when it gave one
        return values.get("message") if isinstance(values.get("message"), str) else None
    if not template:
        return None
    column = 1 if lang == "zh" else 0
    words = {k: WORDS[v][column] for k, v in values.items() if k in WORD_PARAMS and isinstance(v, str) and v in WORDS}
    try:
        return template.format(**{**values, **words})
    except (KeyError, IndexError, ValueError):
        return None


@dataclass(frozen=True, eq=False)
class Problem:
    """One thing wrong with a file. `line` is 1-based (None for the file as a whole or a missing item); `id` the
    item's id when it has one; `field` the JSON path, column or setting at fault ("" when none)."""

    line: int | None
    id: str | None
    kind: str
    message: str
    fix: str = ""
    severity: str = "error"  # "error" or "warning" (a warning still scores, e.g. an empty answer)
    file: str | None = None
    field: str = ""
    params: dict[str, Any] = dataclass_field(default_factory=dict)
    say: str = ""  # the sentence's code in MESSAGES when finer than `kind` ("" = the kind's own)

    @property
    def code(self) -> str:
        return self.say or self.kind

    @property
    def reason(self) -> str:  # the name finetune's rejected rows have always used for the message
        return self.message

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else (self.file or "")
        named = self.field and f"'{self.field}'" not in self.message  # evaluation's messages name their field
        said = f"field '{self.field}': {self.message}" if named else self.message
        return f"{where}: {said}" if where else said

    def to_dict(self) -> dict[str, Any]:
        return {"line": self.line, "id": self.id, "kind": self.kind, "message": self.message, "fix": self.fix,
                "severity": self.severity, "file": self.file, "field": self.field, "params": dict(self.params),
                "code": self.code}


class ProblemError(ValueError):
    """A row (or a value in it) that cannot be used, raised where it is found, said as a code and params; the
    reader that catches it knows the line and the file and places it with `at()`. `str()` is the English sentence
    (with its field), so a log or a command line still reads plainly."""

    def __init__(self, code: str, field: str = "", kind: str = "", said: str = "", **params: Any):
        # `said`: the backend's own English sentence, for a code whose English column is "{message}"
        self.code, self.field, self.kind, self.said, self.params = code, field, kind or code, said, params
        values = {"field": field, "message": said, **params}
        self.reason = render(code, "en", values) or said or code
        self.fix = render(code, "en", values, FIXES) or ""
        super().__init__(f"field '{field}': {self.reason}" if field and f"'{field}'" not in self.reason
                         else self.reason)

    def at(self, line: int | None, id: str | None = None, file: str | None = None, kind: str = "",
           fix: str = "") -> Problem:
        return Problem(line, id, kind or self.kind, self.reason, fix=self.fix or fix, file=file, field=self.field,
                       params=dict(self.params), say=self.code)

    def __reduce__(self):  # crosses the worker process boundary (safeio.worker) intact
        return _rebuild, (type(self), self.code, self.field, self.kind, self.said, self.params)


def _rebuild(cls, code, field, kind, said, params):
    return cls(code, field, kind, said, **params)


def from_read_error(err, fix: str = "") -> Problem:
    """A safeio.SafeReadError as a problem (its kind, line, field and params kept; `params["say"]`, when the reader
    gave one, is the finer sentence of its kind)."""
    message = f"field '{err.field}': {err.reason}" if err.field else err.reason
    params = dict(getattr(err, "params", {}) or {})
    return Problem(err.line, None, err.kind, message, fix=fix, file=err.path, field=err.field, params=params,
                   say=params.pop("say", ""))

"""Golden table for evaluation.extract: what a model wrote -> the option letters it chose (None: unparsed)."""
import json

import pytest

from evaluation.extract import extract_answer

# Realistic option sets: a dermatology item (A-D), a diabetes drug item (A-E), a symptom item with six
# options (A-F), items whose option texts contain letters themselves, and a hepatitis B serology item.
SKIN = {"A": "单纯疱疹", "B": "带状疱疹", "C": "水痘", "D": "接触性皮炎"}
DRUG = {"A": "二甲双胍", "B": "胰岛素", "C": "格列本脲", "D": "阿卡波糖", "E": "罗格列酮"}
LUNG = {"A": "发热", "B": "咳嗽", "C": "咯血", "D": "胸痛", "E": "呼吸困难", "F": "盗汗"}
EXAM = {"A": "血常规", "B": "B超", "C": "CT", "D": "MRI"}
HBV = {"A": "HBsAg阳性", "B": "抗-HBs阳性", "C": "HBeAg阳性", "D": "抗-HBc IgM阳性"}
PNEU = {"A": "肺炎", "B": "大叶性肺炎", "C": "支气管哮喘", "D": "肺结核"}
# Option sets from real exam items whose texts hold letters, symbols or hedge words themselves.
NOISE = {"A": "总声级", "B": "A声级", "C": "B声级", "D": "C声级", "E": "D声级"}
FRACTURE = {"A": "塌陷畸形", "B": "开口受限", "C": "复视", "D": "仅轻度移位", "E": "A+B+C"}
STAGE = {"A": "Ⅱ期A", "B": "Ⅱ期B", "C": "Ⅲ期A", "D": "Ⅲ期B", "E": "Ⅳ期A"}
AGENCY = {"A": "FDA", "B": "IPA", "C": "BA", "D": "CA", "E": "CPA"}
GENES = {"A": "Bb和Bb", "B": "Bb和bb", "C": "BB和BB", "D": "BB和Bb"}
ECG = {"A": "R-R间期相等", "B": "QRS波群形态可正常", "C": "心房率<心室率", "D": "心房率>心室率", "E": "P-P间期相等"}
DOSE = {"A": "-1.75°", "B": "-17.5°", "C": "-175°", "D": "-1750°"}
SALE = {"A": "抗病毒口服液应按处方药管理，不应销售", "B": "不能根据患者的要求直接销售",
        "C": "在不能确定儿童能否使用的情况下，不能销售", "D": "做好用药交代后销售"}
WATER = {"A": "生活污水污染", "B": "农田径流污染", "C": "工业废水污染", "D": "人、畜粪便污染", "E": "含氮有机物污染"}

CASES = [
    # --- a bare letter, with the punctuation and markup models put around it
    ("B", SKIN, "B", "bare"),
    ("B.", SKIN, "B", "bare-dot"),
    ("B、", SKIN, "B", "bare-dunhao"),
    ("B。", SKIN, "B", "bare-period"),
    ("(B)", SKIN, "B", "paren"),
    ("（B）", SKIN, "B", "fullwidth-paren"),
    ("【B】", SKIN, "B", "lenticular"),
    ("**B**", SKIN, "B", "markdown-bold"),
    ("  B  \n", SKIN, "B", "surrounding-whitespace"),
    ("Ｂ", SKIN, "B", "fullwidth-letter"),
    ("（Ｂ）", SKIN, "B", "fullwidth-letter-paren"),
    ("b", SKIN, "B", "lowercase-bare"),
    ("b.", SKIN, "B", "lowercase-bare-dot"),
    ("B选项", SKIN, "B", "letter-xuanxiang"),
    ("B选项。", SKIN, "B", "letter-xuanxiang-period"),
    ("B项", SKIN, "B", "letter-xiang"),
    # --- letter plus its option text
    ("B. 带状疱疹", SKIN, "B", "letter-dot-text"),
    ("B.带状疱疹", SKIN, "B", "letter-dot-text-nospace"),
    ("B、带状疱疹", SKIN, "B", "letter-dunhao-text"),
    ("B：带状疱疹", SKIN, "B", "letter-colon-text"),
    ("B 带状疱疹", SKIN, "B", "letter-space-text"),
    ("（B）带状疱疹", SKIN, "B", "paren-letter-text"),
    ("**B. 带状疱疹**", SKIN, "B", "bold-letter-text"),
    ("B. 带状疱疹\n\n带状疱疹由水痘-带状疱疹病毒引起，皮疹沿单侧神经分布，伴明显神经痛。", SKIN, "B", "letter-text-explanation"),
    ("B，因为皮疹呈单侧带状分布并伴有神经痛。", SKIN, "B", "letter-then-reason"),
    # --- explicit Chinese answer statements
    ("答案：B", SKIN, "B", "daan-colon"),
    ("答案:B", SKIN, "B", "daan-ascii-colon"),
    ("答案：Ｂ", SKIN, "B", "daan-fullwidth-letter"),
    ("答案是B", SKIN, "B", "daan-shi"),
    ("答案为B。", SKIN, "B", "daan-wei"),
    ("正确答案为B", SKIN, "B", "zhengque-daan-wei"),
    ("正确答案是：B", SKIN, "B", "zhengque-daan-shi-colon"),
    ("最佳答案：B", SKIN, "B", "zuijia-daan"),
    ("参考答案：B。", SKIN, "B", "cankao-daan"),
    ("答案应该是B", SKIN, "B", "daan-yinggai"),
    ("答案应选B", SKIN, "B", "daan-ying-xuan"),
    ("答案：(B)", SKIN, "B", "daan-paren"),
    ("答案：【B】", SKIN, "B", "daan-lenticular"),
    ("答案：**B**", SKIN, "B", "daan-bold"),
    ("**答案：B**", SKIN, "B", "bold-daan"),
    ("答案：B选项", SKIN, "B", "daan-letter-xuanxiang"),
    ("答案：B. 带状疱疹", SKIN, "B", "daan-letter-text"),
    ("答案：b", SKIN, "B", "daan-lowercase"),
    ("答案：\nB", SKIN, "B", "daan-next-line"),
    ("答案：\n\nB. 带状疱疹", SKIN, "B", "daan-blank-line-letter-text"),
    ("答：B", SKIN, "B", "da-colon"),
    ("选B", SKIN, "B", "xuan"),
    ("故选B。", SKIN, "B", "gu-xuan"),
    ("应选B", SKIN, "B", "ying-xuan"),
    ("本题选B。", SKIN, "B", "benti-xuan"),
    ("我选择B。", SKIN, "B", "wo-xuanze"),
    ("选项B正确", SKIN, "B", "xuanxiang-letter-zhengque"),
    ("B选项正确。", SKIN, "B", "letter-xuanxiang-zhengque"),
    ("B项是正确的。", SKIN, "B", "letter-xiang-shi-zhengque-de"),
    ("正确的选项是B", SKIN, "B", "zhengque-de-xuanxiang"),
    ("正确的是B。", SKIN, "B", "zhengque-de-shi"),
    ("最可能的诊断是B。", SKIN, "B", "zuikeneng-zhenduan"),
    ("不正确的是C。", SKIN, "C", "buzhengque-de-shi"),
    ("B为正确答案。", SKIN, "B", "letter-wei-zhengque-daan"),
    ("C选项最符合题意。", SKIN, "C", "letter-zui-fuhe-tiyi"),
    ("以上选项中，C最符合。", SKIN, "C", "letter-zui-fuhe"),
    ("对应选项C。", SKIN, "C", "duiying-xuanxiang"),
    ("回答：C", SKIN, "C", "huida-colon"),
    ("根据临床表现，首先考虑B。", SKIN, "B", "shouxian-kaolv"),
    ("【答案】B", SKIN, "B", "lenticular-daan-header"),
    ("**答案**：B", SKIN, "B", "bold-daan-header"),
    ("<answer>B</answer>", SKIN, "B", "answer-tag"),
    ("<answer>B、D</answer>", SKIN, "BD", "answer-tag-multi"),
    ("$\\boxed{B}$", SKIN, "B", "boxed"),
    ("选项B：带状疱疹", SKIN, "B", "paired-xuanxiang-letter-text"),
    ("B选项带状疱疹。", SKIN, "B", "paired-letter-xuanxiang-text"),
    ("答案：带状疱疹（B）", SKIN, "B", "paired-text-then-letter"),
    ("根据题意，选项B（带状疱疹）符合。", SKIN, "B", "paired-in-sentence"),
    ("A. 单纯疱疹\nB. 带状疱疹", SKIN, None, "paired-two-options-listed-no-choice"),
    # --- English
    ("Answer: B", SKIN, "B", "en-answer-colon"),
    ("answer: b", SKIN, "B", "en-answer-lowercase"),
    ("The answer is B.", SKIN, "B", "en-answer-is"),
    ("The correct answer is (B) herpes zoster.", SKIN, "B", "en-correct-answer-paren"),
    ("Final answer: B", SKIN, "B", "en-final-answer"),
    ("I choose B because the rash follows a dermatome.", SKIN, "B", "en-choose"),
    ("Option B is correct.", SKIN, "B", "en-option-is-correct"),
    # --- the option text alone, or nearly
    ("带状疱疹", SKIN, "B", "text-exact"),
    ("带状疱疹。", SKIN, "B", "text-period"),
    ("答案是带状疱疹", SKIN, "B", "daan-text"),
    ("带状泡疹", SKIN, "B", "text-one-char-typo"),
    ("二甲双胍", DRUG, "A", "text-exact-drug"),
    ("考虑为大叶性肺炎", PNEU, "B", "text-inside-short-reply"),
    ("肺炎", PNEU, "A", "text-shorter-option-exact"),
    ("B超", EXAM, "B", "text-option-with-letter-b-chao"),
    ("CT", EXAM, "C", "text-option-ct"),
    ("MRI", EXAM, "D", "text-option-mri"),
    ("HBeAg阳性", HBV, "C", "text-option-hbeag"),
    # --- multi-answer
    ("BD", SKIN, "BD", "multi-run"),
    ("DB", SKIN, "BD", "multi-run-unsorted"),
    ("B、D", SKIN, "BD", "multi-dunhao"),
    ("B,D", SKIN, "BD", "multi-comma"),
    ("B，D", SKIN, "BD", "multi-fullwidth-comma"),
    ("B和D", SKIN, "BD", "multi-he"),
    ("B与D", SKIN, "BD", "multi-yu"),
    ("B D", SKIN, "BD", "multi-space"),
    ("答案：BD", SKIN, "BD", "multi-daan-run"),
    ("答案：DB", SKIN, "BD", "multi-daan-run-unsorted"),
    ("答案是B和D", SKIN, "BD", "multi-daan-he"),
    ("答案：B、D", SKIN, "BD", "multi-daan-dunhao"),
    ("答案：BB", SKIN, "B", "multi-duplicate-letter"),
    ("正确答案为A、C、E", DRUG, "ACE", "multi-five-options-dunhao"),
    ("答案：ACE", DRUG, "ACE", "multi-five-options-run"),
    ("答案：E、A", DRUG, "AE", "multi-five-options-unsorted"),
    ("选ABDE", DRUG, "ABDE", "multi-five-options-xuan"),
    ("答案：ACF", LUNG, "ACF", "multi-six-options"),
    ("正确答案为A、B、D、F", LUNG, "ABDF", "multi-six-options-dunhao"),
    ("FBA", LUNG, "ABF", "multi-six-options-bare-unsorted"),
    ("The answer is B and D.", SKIN, "BD", "multi-en-and"),
    ("B、D项正确，A、C项错误。", SKIN, "BD", "multi-verdict"),
    ("答案为B、D两项", SKIN, "BD", "multi-liangxiang"),
    # --- chain of thought: the conclusion decides
    ("A项错误，因为单纯疱疹多见于口周；C项也不对，水痘呈向心性分布；综上，答案为D", SKIN, "D", "cot-zongshang"),
    ("虽然B看似正确，但正确答案是C", SKIN, "C", "cot-suiran-danshi"),
    ("首先分析各选项：A项，单纯疱疹好发于皮肤黏膜交界处，与题干不符；B项，带状疱疹沿单侧周围神经呈带状分布，"
     "伴神经痛，符合；C项，水痘为全身向心性分布；D项，接触性皮炎有明确接触史。故选B。", SKIN, "B", "cot-option-by-option"),
    ("患者老年男性，左侧胸背部簇集性水疱，沿肋间神经分布，伴剧烈疼痛。这是带状疱疹的典型表现。\n\n答案：B",
     SKIN, "B", "cot-answer-last-line"),
    ("答案：B\n\n解析：A项单纯疱疹多位于口唇；C项水痘全身分布；D项接触性皮炎有接触史。", SKIN, "B", "cot-answer-first-then-analysis"),
    ("该患者为2型糖尿病合并肥胖，首选二甲双胍。A项正确。B项胰岛素用于口服药失效者，错误。C项格列本脲易致低血糖，"
     "不作首选。因此本题答案为A。", DRUG, "A", "cot-diabetes-first-line"),
    ("我一开始想选A，但仔细分析后发现C更符合题意，所以答案是C。", SKIN, "C", "cot-changed-mind"),
    ("答案是A吗？不对，A项单纯疱疹不沿神经分布，应该是B。", SKIN, "B", "cot-rhetorical-question"),
    ("A项错误，B项错误，C项正确，D项错误。", SKIN, "C", "cot-verdicts-only"),
    ("A：错误；B：正确；C：错误；D：错误", SKIN, "B", "cot-colon-verdicts"),
    ("A. 单纯疱疹：好发于口周，错误。\nB. 带状疱疹：沿神经分布，伴神经痛，正确。\nC. 水痘：向心性分布，错误。",
     SKIN, "B", "cot-option-lines-with-verdicts"),
    ("结合患者症状，A项正确，C项正确，E项正确，B、D两项均不符合。因此答案为ACE。", DRUG, "ACE", "cot-multi-five"),
    ("肺结核的典型症状包括低热、咳嗽、咯血、胸痛和盗汗。故选ABCDF。", LUNG, "ABCDF", "cot-multi-six"),
    ("这不是C，而是D。", SKIN, "D", "cot-bushi-ershi"),
    ("综上所述，最可能的是B。", SKIN, "B", "cot-zuikeneng-shi"),
    ("综上，B", SKIN, "B", "cot-zongshang-bare"),
    ("患者的诊断为B。", SKIN, "B", "cot-zhenduan-wei"),
    ("答案：C。不选A，因为单纯疱疹不沿神经分布。", SKIN, "C", "cot-buxuan-not-a-choice"),
    ("答案是B，而不是C。", SKIN, "B", "cot-erbushi"),
    ("答案是B，C项错误，因为水痘为向心性分布。", SKIN, "B", "cot-following-letter-discussed"),
    ("答案：B。解析：对于无法确定病因的皮疹，应先询问接触史。\n本病沿神经分布。\n另外，接触性皮炎也可能是鉴别诊断之一。",
     SKIN, "B", "cot-hedge-words-far-after-answer"),
    ("I think A is tempting, but the answer is C.", SKIN, "C", "cot-en-tempting"),
    ("A. 单纯疱疹 ×\nB. 带状疱疹 √\nC. 水痘 ×\nD. 接触性皮炎 ×", SKIN, "B", "cot-check-marks"),
    ("A. 错误\nB. 正确\nC. 错误\nD. 错误", SKIN, "B", "cot-option-lines-bare-verdicts"),
    ("A项：错误。B项：正确。C项：错误。", SKIN, "B", "cot-verdicts-one-line"),
    ("A、B、C都是带状疱疹的特点，D不是，故选D。", SKIN, "D", "cot-list-subject-then-xuan"),
    ("不能选A，因为单纯疱疹不沿神经分布，应选B。", SKIN, "B", "cot-buneng-xuan"),
    ("答案：B\nD项错误，因为接触性皮炎有接触史。", SKIN, "B", "cot-answer-then-next-line-letter"),
    ("Looking at the options, A is incorrect, B is incorrect, C is correct.", SKIN, "C", "cot-en-verdicts"),
    ("Answer: C\nExplanation: Option A is wrong because herpes simplex is perioral.", SKIN, "C", "cot-en-answer-first"),
    ("该患者为E型肝炎？不，是B型。答案：D", SKIN, "D", "cot-e-xing-b-xing-then-answer"),
    ("患者的乙肝五项：HBsAg(+)、HBeAg(+)、抗-HBc(+)，即大三阳。答案：C", HBV, "C", "cot-hbv-serology"),
    # --- letters inside words and medical terms are not answers
    ("患者CT示肺部阴影，B超提示肝大，答案：C", SKIN, "C", "term-ct-bchao-then-answer"),
    ("DNA病毒感染，答案为A", SKIN, "A", "term-dna"),
    ("HBV感染者中，答案选D", SKIN, "D", "term-hbv"),
    ("ABO血型不合导致溶血，故选C", SKIN, "C", "term-abo"),
    ("维生素B12缺乏可致巨幼细胞贫血，答案：A", SKIN, "A", "term-vitamin-b12"),
    ("维生素C缺乏会导致坏血病，答案：D", SKIN, "D", "term-vitamin-c"),
    ("IgE介导的Ⅰ型超敏反应，答案为D", SKIN, "D", "term-ige"),
    ("ECG示ST段抬高，MRI未见异常，选A", SKIN, "A", "term-ecg-mri"),
    ("A型血的患者，答案是C", SKIN, "C", "term-a-xing-xue"),
    ("乙肝e抗原阳性提示传染性强，答案：C", HBV, "C", "term-yigan-e-kangyuan"),
    ("CD4+T细胞减少，答案为B", SKIN, "B", "term-cd4"),
    ("C反应蛋白升高提示细菌感染，故选A", SKIN, "A", "term-c-fanying-danbai"),
    ("B族链球菌感染，应选D", SKIN, "D", "term-b-zu"),
    ("D-二聚体升高，答案B", SKIN, "B", "term-d-dimer"),
    ("ACE抑制剂可引起干咳，答案是E", DRUG, "E", "term-ace-inhibitor"),
    ("B超检查", SKIN, None, "term-b-chao-only"),
    ("A型血", SKIN, None, "term-a-xing-only"),
    ("DNA", SKIN, None, "term-dna-only"),
    ("CT检查显示肺部阴影", SKIN, None, "term-ct-only"),
    ("维生素B12", SKIN, None, "term-b12-only"),
    ("检测HBeAg和抗-HBc", SKIN, None, "term-serology-only"),
    ("首选B超检查。", EXAM, "B", "term-shouxuan-b-chao-is-option-text"),
    ("B超检查", EXAM, "B", "term-b-chao-jiancha-is-option-text"),
    ("不是带状疱疹", SKIN, None, "no-answer-option-text-negated"),
    ("答案可能是B。也可能是C。", SKIN, None, "hedge-alternative-next-sentence"),
    ("The answer is a viral infection.", SKIN, None, "en-article-a-not-a-letter"),
    # --- option texts that hold letters, symbols or hedge words themselves
    ("正确答案是A声级", NOISE, "B", "opttext-letter-led-text"),
    ("A声级", NOISE, "B", "opttext-letter-led-text-alone"),
    ("答案：C", NOISE, "C", "opttext-letter-led-plain-letter"),
    ("A项塌陷畸形，错误。E项A+B+C，正确。", FRACTURE, "E", "opttext-a-plus-b-plus-c-quoted"),
    ("A+B+C", FRACTURE, "E", "opttext-a-plus-b-plus-c-alone"),
    ("A项Ⅱ期A，错误。D项Ⅲ期B，正确。", STAGE, "D", "opttext-stage-letters-quoted"),
    ("FDA", AGENCY, "A", "opttext-acronym-with-letter-outside-options"),
    ("Bb和Bb", GENES, "A", "opttext-case-decides"),
    ("心房率<心室率", ECG, "C", "opttext-symbol-decides"),
    ("-175°", DOSE, "C", "opttext-decimal-point-decides"),
    ("C. 在不能确定儿童能否使用的情况下，不能销售", SALE, "C", "opttext-hedge-words-inside-option"),
    ("答案：ABC（生活污水污染）", WATER, "ABC", "opttext-multi-then-first-text-in-brackets"),
    # --- hedges: no usable answer
    ("可能是B也可能是C，无法确定", SKIN, None, "hedge-keneng"),
    ("答案可能是B，也可能是C。", SKIN, None, "hedge-daan-keneng"),
    ("答案是B或C", SKIN, None, "hedge-huo"),
    ("B或者C", SKIN, None, "hedge-huozhe-bare"),
    ("选B还是C，难以判断。", SKIN, None, "hedge-haishi"),
    ("B和C都有可能。", SKIN, None, "hedge-douyoukeneng"),
    ("The answer could be B or C.", SKIN, None, "hedge-en-or"),
    # --- refusals
    ("我无法回答这个问题", SKIN, None, "refusal-wufa-huida"),
    ("作为AI我不能提供医疗建议", SKIN, None, "refusal-as-ai"),
    ("作为一个人工智能语言模型，我无法提供诊断，建议您咨询专业医生。", SKIN, None, "refusal-long"),
    ("I cannot answer medical questions.", SKIN, None, "refusal-en"),
    ("抱歉，我不能作答。", SKIN, None, "refusal-buneng-zuoda"),
    # --- empty and missing
    ("", SKIN, None, "empty"),
    ("   \n\t ", SKIN, None, "whitespace"),
    (None, SKIN, None, "none"),
    ("。", SKIN, None, "punctuation-only"),
    # --- letters outside the item's options
    ("E", SKIN, None, "outside-bare"),
    ("答案：E", SKIN, None, "outside-daan"),
    ("答案：BE", SKIN, None, "outside-multi"),
    ("答案：F", DRUG, None, "outside-five-options"),
    ("答案：B……不对，答案是E", SKIN, None, "outside-last-statement-wins"),
    # --- the last explicit statement wins
    ("答案：A\n再想一想，A项单纯疱疹不会沿神经分布。答案：B", SKIN, "B", "last-statement-wins"),
    ("选A？不，应选B。", SKIN, "B", "last-xuan-wins"),
    ("B项的说法正确，但本题问的是最佳处理，答案为D。", SKIN, "D", "statement-beats-verdict"),
    ("B. 带状疱疹看似合理，但正确答案是A", SKIN, "A", "statement-beats-leading-letter"),
    # --- text that answers nothing
    ("这道题考查的是皮肤病的鉴别诊断。", SKIN, None, "no-answer-topic-only"),
    ("A项错误", SKIN, None, "no-answer-one-negative-verdict"),
    ("以下哪项正确？", SKIN, None, "no-answer-question-echo"),
    ("疱疹", SKIN, None, "no-answer-text-matches-two-options"),
]


@pytest.mark.parametrize(("text", "options", "expected"), [c[:3] for c in CASES], ids=[c[3] for c in CASES])
def test_extract_answer(text, options, expected):
    assert extract_answer(text, options) == expected


def test_real_exam_items(shared_public):
    """Every answer form read back on real option sets: the letter, the letter with its text, the text alone."""
    items = [json.loads(line) for name in ("cmexam/cmexam_mc.jsonl", "medqa_mainland/medqa_mainland_mc.jsonl")
             for line in (shared_public / name).read_text(encoding="utf-8").splitlines()]
    wrong = []
    for item in items:
        options, answer = item["options"], item["answer"]
        forms = [f"答案：{answer}", answer, f"故选{answer}。"]
        if len(answer) == 1:
            forms += [f"{answer}. {options[answer]}", options[answer]]
        wrong += [(item["id"], text) for text in forms if extract_answer(text, options) != answer]
    assert not wrong, wrong[:10]


def test_case_ids_are_unique():
    ids = [c[3] for c in CASES]
    assert len(ids) == len(set(ids))


def test_option_keys_may_be_lowercase_or_fullwidth():
    assert extract_answer("答案：B", {"a": "发热", "b": "咳嗽"}) == "B"
    assert extract_answer("答案：B", {"Ａ": "发热", "Ｂ": "咳嗽"}) == "B"


@pytest.mark.parametrize("options", [{}, {"1": "发热", "2": "咳嗽"}, {"A": "发热", "G": "咳嗽"}])
def test_options_not_keyed_by_letters_are_rejected(options):
    with pytest.raises(ValueError, match="options"):
        extract_answer("A", options)

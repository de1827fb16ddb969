"""The process catalogue: every step of the diagrams, application kind, status, role, notice
kind, registry state and policy floor, defined once. The engine, the pages, the API document,
the generated documents, the database CHECK constraints and the tests read them from here.

Adding a step to a diagram touches the diagram, its form and one `Step` entry below;
tests/test_catalogue.py fails until the three agree. Labels are Chinese `msg()` templates
(pages translate them; documents print them as they are)."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from .i18n import Message, msg

# Policy floors (Shenzhen implementation plan, §三): the only place these numbers are written.
MIN_TEAM_SHARE = Decimal(70)          # §三(一)1: a team's share under co-ownership by shares
MIN_USE_RIGHT_YEARS = 10              # §三(二)1: long-term use right
MIN_PUBLICITY_DAYS = 15               # §三(一)3, §三(二)1, §三(五)1: calendar days on the board
MIN_INVENTOR_INCOME = Decimal(70)     # §三(六)1: net income to inventors and key contributors
MIN_TTO_INCOME = Decimal(3)           # §三(六)1: net income to the tech-transfer office
FLOORS = {"team_share": MIN_TEAM_SHARE, "use_right_years": MIN_USE_RIGHT_YEARS, "publicity_days": MIN_PUBLICITY_DAYS,
          "inventor_income": MIN_INVENTOR_INCOME, "tto_income": MIN_TTO_INCOME}  # for pages and documents


@dataclass(frozen=True)
class Status:
    code: str
    label: Message
    closed: bool = False
    withdrawable: bool = False        # the representative may still withdraw (before the decision)
    application: bool = True          # an application's status (not a watch's): statistics count these


# Open statuses in process order: an application with tasks in several takes the latest.
STATUSES = (
    Status("draft", msg("起草中"), withdrawable=True),
    Status("consenting", msg("待成员确认"), withdrawable=True),
    Status("in_review", msg("审查中"), withdrawable=True),
    Status("deciding", msg("待决策"), withdrawable=True),
    Status("publicity", msg("公示中")),
    Status("agreement", msg("协议拟定")),
    Status("signing", msg("签署中")),
    Status("ip_transfer", msg("权属变更")),
    Status("paying", msg("待发放")),
    Status("watching", msg("转化期限监督中"), application=False),
    Status("completed", msg("已完成"), closed=True),
    Status("refused", msg("未获批准"), closed=True),
    Status("withdrawn", msg("已撤回"), closed=True),
)
STATUS = {s.code: s for s in STATUSES}
STATUS_CODES = tuple(STATUS)
STATUS_LABELS = {s.code: s.label for s in STATUSES}
OPEN_STATUSES = tuple(s.code for s in STATUSES if not s.closed)
CLOSED_STATUSES = tuple(s.code for s in STATUSES if s.closed)
WITHDRAWABLE = tuple(s.code for s in STATUSES if s.withdrawable)
APPLICATION_STATUSES = tuple(s.code for s in STATUSES if s.application)
WATCH_STATUS = "watching"            # a conversion period watch waiting for its period to lapse
WAITING_STATUS = "publicity"          # no task for a person: the notice is up, waiting out its term


@dataclass(frozen=True)
class Role:
    code: str
    label: Message
    lane: str | None = None           # the BPMN lane whose tasks this role does
    personal: bool = False            # a task for one named person, not a queue of the unit
    grantable: bool = True            # an administrator grants it (stored in role_grants)


ROLES_ALL = (
    Role("researcher", msg("科研人员")),
    Role("representative", msg("团队代表"), lane="团队代表", personal=True, grantable=False),
    Role("member", msg("成果完成人"), lane="成果完成人", personal=True, grantable=False),
    Role("tto", msg("成果转化部门经办人"), lane="成果转化服务机构"),
    Role("decider", msg("单位决策人"), lane="单位决策机构"),
    Role("signer", msg("单位授权签字人"), lane="单位授权签字人"),
    Role("auditor", msg("审计人员")),
    Role("admin", msg("管理员")),
    Role("city_auditor", msg("市级审计人员")),
)
ROLE = {r.code: r for r in ROLES_ALL}
ROLE_LABELS = {r.code: r.label for r in ROLES_ALL}
GRANTABLE_ROLES = tuple(r.code for r in ROLES_ALL if r.grantable)
TASK_ROLES = tuple(r.code for r in ROLES_ALL if r.lane)
PERSONAL_ROLES = tuple(r.code for r in ROLES_ALL if r.personal)
LANE_ROLES = {r.lane: r.code for r in ROLES_ALL if r.lane}
READ_ONLY_ROLES = ("auditor", "city_auditor")   # read everything of their units, change nothing


@dataclass(frozen=True)
class Step:
    """One task of a diagram. `stage` groups the steps that play the same part in different
    processes (the draft of a grant and the request of an extension are both filed here)."""

    id: str
    label: Message
    processes: tuple[str, ...]
    status: str | None = None         # user tasks: the application's status while it waits here
    role: str | None = None           # user tasks: who does it (from the lane)
    form: str | None = None           # user tasks: forms/<form>
    stage: str = ""
    notes: str = ""


GRANTS = ("ownership_grant", "use_right_grant")
AGREEMENTS = (*GRANTS, "use_right_extension")
USER_STEPS = (
    Step("draft", msg("填写申请"), GRANTS, "draft", "representative", "{kind}_draft.schema.json", "filed",
         "团队代表填写成果、团队、赋权条件并附材料；policy.check_draft"),
    Step("consent", msg("团队成员确认"), GRANTS, "consenting", "member", "consent.schema.json", "consent",
         "每位成员书面确认内部分配（多实例，一人一项）"),
    Step("review", msg("成果转化部门审查"), GRANTS, "in_review", "tto", "review.schema.json", "review",
         "资格、排除情形、完整性；可退回或不予通过"),
    Step("unit_decision", msg("单位集体决策"), GRANTS, "deciding", "decider", "unit_decision.schema.json",
         "decision", "集体决策记录（会议、日期、结果、异议）"),
    Step("handle_objection", msg("公示异议处理"), ("publicity",), "publicity", "tto",
         "objection_handling.schema.json", "objection", "异议不成立 / 不成立并重新公示 / 成立"),
    Step("agreement_terms", msg("拟定协议条款"), GRANTS, "agreement", "tto", "{kind}_terms.schema.json", "terms",
         "§三(一)4 / §三(二)1 的协议条款"),
    Step("sign_representative", msg("团队代表签署"), AGREEMENTS, "signing", "representative",
         "signature.schema.json", "sign", "乙方指定代表电子签名"),
    Step("sign_unit", msg("单位签署"), AGREEMENTS, "signing", "signer", "signature.schema.json", "sign",
         "甲方授权签字人电子签名"),
    Step("ip_transfer", msg("知识产权权属变更"), GRANTS, "ip_transfer", "tto", "ip_transfer.schema.json",
         "transfer", "权属变更或许可备案（机关、编号、日期、证明）"),
    Step("complete_archive", msg("办结归档"), AGREEMENTS, "ip_transfer", "tto", "completion.schema.json",
         "archive", "归档，审计可下载协议与证据包"),
    Step("extension_request", msg("延期申请"), ("use_right_extension",), "draft", "representative",
         "extension_request.schema.json", "filed", "§三(二)2 延长使用权"),
    Step("extension_review", msg("延期审查"), ("use_right_extension",), "in_review", "tto",
         "extension_review.schema.json", "review", "履约与转化情况"),
    Step("extension_decision", msg("延期决策"), ("use_right_extension",), "deciding", "decider",
         "unit_decision.schema.json", "decision", "集体决策记录"),
    Step("supplementary_terms", msg("补充协议条款"), ("use_right_extension",), "agreement", "tto",
         "supplementary_terms.schema.json", "terms", "延长年限、到期日、许可费"),
    Step("conversion_plan", msg("拟定转化方案"), ("conversion",), "draft", "tto", "conversion_plan.schema.json",
         "filed", "转化方式、定价、关联方申报（§三(五)1）"),
    Step("conversion_contract", msg("登记转化合同"), ("conversion",), "agreement", "tto",
         "conversion_contract.schema.json", "contract", "合同金额与公示价格一致"),
    Step("distribution_decision", msg("收益分配决策"), ("distribution",), "deciding", "decider",
         "distribution_decision.schema.json", "filed", "分配方案的集体决策（§三(六)）"),
    Step("distribution_payments", msg("登记奖励发放"), ("distribution",), "paying", "tto",
         "distribution_payments.schema.json", "payments", "逐人登记发放"),
    Step("conversion_lapse", msg("转化期限届满处理"), ("conversion_watch",), "deciding", "tto",
         "conversion_lapse.schema.json", "filed", "转化期限届满未转化：延长（附理由）或按协议约定处理"),
)
SERVICE_STEPS = (
    Step("record_decision", msg("生成单位决策记录"), AGREEMENTS, notes="尽职免责证据：谁、何时、依据什么作出决策"),
    Step("open_publicity", msg("发布公示"), ("publicity",), notes=f"不少于{MIN_PUBLICITY_DAYS}日；计时器在期满后触发"),
    Step("close_publicity", msg("结束公示"), ("publicity",)),
    Step("render_agreement", msg("生成协议文本"), AGREEMENTS),
    Step("finalize_agreement", msg("协议定稿"), AGREEMENTS, notes="双方签署后的最终文本"),
    Step("update_registry", msg("更新成果库"), AGREEMENTS, notes="§三(三)4 职务科技成果库"),
    Step("record_conversion", msg("登记成果转化"), ("conversion",)),
    Step("record_distribution", msg("登记收益分配"), ("distribution",)),
    Step("schedule", msg("计算转化期限与提醒时间"), ("conversion_watch",)),
    Step("remind_first", msg("第一次提醒"), ("conversion_watch",), notes="单位设置，默认期满前90日"),
    Step("remind_second", msg("第二次提醒"), ("conversion_watch",), notes="单位设置，默认期满前30日"),
    Step("check_lapse", msg("核查转化情况"), ("conversion_watch",)),
    Step("apply_extension", msg("延长转化期限"), ("conversion_watch",)),
    Step("apply_consequence", msg("按协议约定处理"), ("conversion_watch",)),
)
STEP = {s.id: s for s in (*USER_STEPS, *SERVICE_STEPS)}
STEP_LABELS = {s.id: s.label for s in USER_STEPS}
STEP_STATUS = {s.id: s.status for s in USER_STEPS}
SERVICE_STEP_IDS = tuple(s.id for s in SERVICE_STEPS)


def steps_in(stage: str) -> tuple[str, ...]:
    """The user steps that play one part (e.g. "decision": unit_decision, extension_decision)."""
    return tuple(s.id for s in USER_STEPS if s.stage == stage)


def step_form(step_id: str, kind: str) -> str:
    """The form file of a user step for an application kind (drafts and terms differ by kind)."""
    form = STEP[step_id].form
    if form is None:
        raise KeyError(f"{step_id} has no form")
    return form.format(kind=kind)


@dataclass(frozen=True)
class Kind:
    code: str
    label: Message
    process: str
    filed_step: str                   # the step whose form is "the application as filed"
    terms_step: str | None = None     # the step that fixes the agreement's terms
    notice: str = "grant"             # what its publicity posts
    grant: bool = False               # a grant (ownership / use right) that conversions can follow
    short: Message | None = None      # the registry's short name of a grant kind
    application: bool = True          # False: a process instance no one applied for (the watch)


KINDS_ALL = (
    Kind("ownership", msg("赋予所有权"), "ownership_grant", "draft", "agreement_terms", grant=True,
         short=msg("所有权")),
    Kind("use_right", msg("赋予长期使用权"), "use_right_grant", "draft", "agreement_terms", grant=True,
         short=msg("长期使用权")),
    Kind("extension", msg("延长长期使用权"), "use_right_extension", "extension_request", "supplementary_terms"),
    Kind("conversion", msg("成果转化"), "conversion", "conversion_plan", notice="price"),
    Kind("distribution", msg("转化收益分配"), "distribution", "distribution_decision", notice="leader_reward"),
    Kind("watch", msg("转化期限监督"), "conversion_watch", "conversion_lapse", application=False),
)
KIND = {k.code: k for k in KINDS_ALL}
KIND_CODES = tuple(KIND)
KIND_LABELS = {k.code: k.label for k in KINDS_ALL}
PROCESS_FOR_KIND = {k.code: k.process for k in KINDS_ALL}
GRANT_KINDS = tuple(k.code for k in KINDS_ALL if k.grant)
APPLICATION_KINDS = tuple(k.code for k in KINDS_ALL if k.application)
GRANT_KIND_SHORT = {k.code: k.short for k in KINDS_ALL if k.grant}

NOTICE_KINDS = {"grant": msg("赋权公示"), "price": msg("协议定价公示"), "leader_reward": msg("领导人员奖励公示")}

# The achievement registry (职务科技成果库, §三(三)4): registered → granted → converting → converted / left.
REGISTRY_STATES = {"registered": msg("在库"), "granted": msg("已赋权"), "converting": msg("转化中"),
                   "converted": msg("已转化"), "left": msg("出库")}

# The two signing parties of an agreement: the step, the stamp's name and the signature's title.
SIGNERS = {"representative": ("sign_representative", "团队指定代表", "乙方指定代表电子签名", "乙方指定代表"),
           "unit": ("sign_unit", "单位授权签字人", "甲方授权签字人电子签名", "甲方授权签字人")}
SIGN_STEP_PARTY = {step: party for party, (step, *_rest) in SIGNERS.items()}


def check_constraint(column: str, codes: tuple[str, ...] | list[str]) -> str:
    """SQL of a CHECK that `column` holds one of `codes` (models.py and the migration share it)."""
    return f"{column} IN ({', '.join(repr(c) for c in codes)})"


# The database refuses any other value (CHECK constraints in models.py and migration 0003_catalogue).
# Adding a value here needs a migration that re-creates that table's constraint.
CHECKS = {
    "ck_applications_kind": ("applications", "kind", KIND_CODES),
    "ck_applications_status": ("applications", "status", STATUS_CODES),
    "ck_role_grants_role": ("role_grants", "role", GRANTABLE_ROLES),
    "ck_human_tasks_role": ("human_tasks", "role", TASK_ROLES),
    "ck_signatures_role": ("signatures", "role", tuple(SIGNERS)),
    "ck_publicity_notices_kind": ("publicity_notices", "kind", tuple(NOTICE_KINDS)),
    "ck_registry_entries_status": ("registry_entries", "status", tuple(REGISTRY_STATES)),
    "ck_registry_entries_grant_kind": ("registry_entries", "grant_kind", GRANT_KINDS),
}


def checks_of(table: str) -> list[tuple[str, str]]:
    """(name, SQL) of each CHECK on `table`."""
    return [(name, check_constraint(column, codes)) for name, (t, column, codes) in CHECKS.items() if t == table]

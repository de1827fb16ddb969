"""The process catalogue: every step of the diagrams, application kind, status, role, notice
kind, registry state and policy floor, defined once. The engine, the pages, the API document,
the generated documents, the database CHECK constraints and the tests read them from here.

Adding a step to a diagram touches the diagram, its form and one `Step` entry below;
tests/test_catalogue.py fails until the three agree. Labels are Chinese `msg()` templates
(pages translate them; documents print them as they are)."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from enum import StrEnum

from .i18n import Message, msg

# Policy floors (Shenzhen implementation plan, §三): the only place these numbers are written.
MIN_TEAM_SHARE = Decimal(70)          # §三(一)1: a team's share under co-ownership by shares
MIN_USE_RIGHT_YEARS = 10              # §三(二)1: long-term use right
MIN_PUBLICITY_DAYS = 15               # §三(一)3, §三(二)1, §三(五)1: calendar days on the board
MIN_INVENTOR_INCOME = Decimal(70)     # §三(六)1: net income to inventors and key contributors
MIN_TTO_INCOME = Decimal(3)           # §三(六)1: net income to the tech-transfer office
FLOORS = {"team_share": MIN_TEAM_SHARE, "use_right_years": MIN_USE_RIGHT_YEARS, "publicity_days": MIN_PUBLICITY_DAYS,
          "inventor_income": MIN_INVENTOR_INCOME, "tto_income": MIN_TTO_INCOME}  # for pages and documents


# The codes. Each is spelled here once; every other module, template and test reads the member
# (a StrEnum member is its str value: it compares equal to it, binds as it and prints as it).
class StatusCode(StrEnum):
    """An application's (or a watch's) status: applications.status."""

    DRAFT = "draft"
    CONSENTING = "consenting"
    IN_REVIEW = "in_review"
    DECIDING = "deciding"
    PUBLICITY = "publicity"
    AGREEMENT = "agreement"
    SIGNING = "signing"
    IP_TRANSFER = "ip_transfer"
    PAYING = "paying"
    WATCHING = "watching"
    COMPLETED = "completed"
    REFUSED = "refused"
    WITHDRAWN = "withdrawn"


class RoleCode(StrEnum):
    """A role: role_grants.role, human_tasks.role, a user's roles."""

    RESEARCHER = "researcher"
    REPRESENTATIVE = "representative"
    MEMBER = "member"
    TTO = "tto"
    DECIDER = "decider"
    SIGNER = "signer"
    AUDITOR = "auditor"
    ADMIN = "admin"
    CITY_AUDITOR = "city_auditor"


class StepId(StrEnum):
    """A task id of the diagrams (user tasks, then service tasks); also the key of its form's data."""

    DRAFT = "draft"
    CONSENT = "consent"
    REVIEW = "review"
    UNIT_DECISION = "unit_decision"
    HANDLE_OBJECTION = "handle_objection"
    AGREEMENT_TERMS = "agreement_terms"
    SIGN_REPRESENTATIVE = "sign_representative"
    SIGN_UNIT = "sign_unit"
    IP_TRANSFER = "ip_transfer"
    COMPLETE_ARCHIVE = "complete_archive"
    EXTENSION_REQUEST = "extension_request"
    EXTENSION_REVIEW = "extension_review"
    EXTENSION_DECISION = "extension_decision"
    SUPPLEMENTARY_TERMS = "supplementary_terms"
    CONVERSION_PLAN = "conversion_plan"
    CONVERSION_CONTRACT = "conversion_contract"
    DISTRIBUTION_DECISION = "distribution_decision"
    DISTRIBUTION_PAYMENTS = "distribution_payments"
    CONVERSION_LAPSE = "conversion_lapse"
    RECORD_DECISION = "record_decision"
    OPEN_PUBLICITY = "open_publicity"
    CLOSE_PUBLICITY = "close_publicity"
    RENDER_AGREEMENT = "render_agreement"
    FINALIZE_AGREEMENT = "finalize_agreement"
    UPDATE_REGISTRY = "update_registry"
    RECORD_CONVERSION = "record_conversion"
    RECORD_DISTRIBUTION = "record_distribution"
    SCHEDULE = "schedule"
    REMIND_FIRST = "remind_first"
    REMIND_SECOND = "remind_second"
    CHECK_LAPSE = "check_lapse"
    APPLY_EXTENSION = "apply_extension"
    APPLY_SUPPLEMENTARY = "apply_supplementary"
    APPLY_CONSEQUENCE = "apply_consequence"


class KindCode(StrEnum):
    """An application kind: applications.kind."""

    OWNERSHIP = "ownership"
    USE_RIGHT = "use_right"
    EXTENSION = "extension"
    CONVERSION = "conversion"
    DISTRIBUTION = "distribution"
    WATCH = "watch"


class Process(StrEnum):
    """A process id of the diagrams (bpmn/*.bpmn)."""

    OWNERSHIP_GRANT = "ownership_grant"
    USE_RIGHT_GRANT = "use_right_grant"
    USE_RIGHT_EXTENSION = "use_right_extension"
    PUBLICITY = "publicity"
    CONVERSION = "conversion"
    DISTRIBUTION = "distribution"
    CONVERSION_WATCH = "conversion_watch"


class NoticeKind(StrEnum):
    """What a publicity notice posts: publicity_notices.kind."""

    GRANT = "grant"
    PRICE = "price"
    LEADER_REWARD = "leader_reward"


class RegistryState(StrEnum):
    """An achievement's registry state: registry_entries.status."""

    REGISTERED = "registered"
    GRANTED = "granted"
    CONVERTING = "converting"
    CONVERTED = "converted"
    LEFT = "left"


class ObjectionStatus(StrEnum):
    """An objection to a notice: objections.status (superseded: its round ended on another's decision)."""

    OPEN = "open"
    UPHELD = "upheld"
    DISMISSED = "dismissed"
    SUPERSEDED = "superseded"


class ObjectionDecision(StrEnum):
    """The office's decision on an objection (the objection_handling form): objections.decision."""

    DISMISS = "dismiss"
    DISMISS_RESTART = "dismiss_restart"
    UPHOLD = "uphold"


class NoticeOutcome(StrEnum):
    """A publicity notice's outcome once handled: publicity_notices.outcome."""

    PASSED = "passed"
    RESTARTED = "restarted"
    UPHELD = "upheld"


# Every code class, by name: the page and document templates get each as a global (`StepId.REVIEW`).
CODES: tuple[type[StrEnum], ...] = (StatusCode, RoleCode, StepId, KindCode, Process, NoticeKind, RegistryState,
                                    ObjectionStatus, ObjectionDecision, NoticeOutcome)
TEMPLATE_CODES = {codes.__name__: codes for codes in CODES}

@dataclass(frozen=True)
class Status:
    code: StatusCode
    label: Message
    closed: bool = False
    withdrawable: bool = False        # the representative may still withdraw (before the decision)
    application: bool = True          # an application's status (not a watch's): statistics count these


# Open statuses in process order: an application with tasks in several takes the latest.
STATUSES = (
    Status(StatusCode.DRAFT, msg("起草中"), withdrawable=True),
    Status(StatusCode.CONSENTING, msg("待成员确认"), withdrawable=True),
    Status(StatusCode.IN_REVIEW, msg("审查中"), withdrawable=True),
    Status(StatusCode.DECIDING, msg("待决策"), withdrawable=True),
    Status(StatusCode.PUBLICITY, msg("公示中")),
    Status(StatusCode.AGREEMENT, msg("协议拟定")),
    Status(StatusCode.SIGNING, msg("签署中")),
    Status(StatusCode.IP_TRANSFER, msg("权属变更")),
    Status(StatusCode.PAYING, msg("待发放")),
    Status(StatusCode.WATCHING, msg("转化期限监督中"), application=False),
    Status(StatusCode.COMPLETED, msg("已完成"), closed=True),
    Status(StatusCode.REFUSED, msg("未获批准"), closed=True),
    Status(StatusCode.WITHDRAWN, msg("已撤回"), closed=True),
)
STATUS: dict[str, Status] = {s.code: s for s in STATUSES}
STATUS_CODES = tuple(STATUS)
STATUS_LABELS: dict[str, Message] = {s.code: s.label for s in STATUSES}
OPEN_STATUSES = tuple(s.code for s in STATUSES if not s.closed)
CLOSED_STATUSES = tuple(s.code for s in STATUSES if s.closed)
WITHDRAWABLE = tuple(s.code for s in STATUSES if s.withdrawable)
APPLICATION_STATUSES = tuple(s.code for s in STATUSES if s.application)
WATCH_STATUS = StatusCode.WATCHING            # a conversion period watch waiting for its period to lapse
WAITING_STATUS = StatusCode.PUBLICITY          # no task for a person: the notice is up, waiting out its term


@dataclass(frozen=True)
class Role:
    code: RoleCode
    label: Message
    lane: str | None = None           # the BPMN lane whose tasks this role does
    personal: bool = False            # a task for one named person, not a queue of the unit
    grantable: bool = True            # an administrator grants it (stored in role_grants)


ROLES_ALL = (
    Role(RoleCode.RESEARCHER, msg("科研人员")),
    Role(RoleCode.REPRESENTATIVE, msg("团队代表"), lane="团队代表", personal=True, grantable=False),
    Role(RoleCode.MEMBER, msg("成果完成人"), lane="成果完成人", personal=True, grantable=False),
    Role(RoleCode.TTO, msg("成果转化部门经办人"), lane="成果转化服务机构"),
    Role(RoleCode.DECIDER, msg("单位决策人"), lane="单位决策机构"),
    Role(RoleCode.SIGNER, msg("单位授权签字人"), lane="单位授权签字人"),
    Role(RoleCode.AUDITOR, msg("审计人员")),
    Role(RoleCode.ADMIN, msg("管理员")),
    Role(RoleCode.CITY_AUDITOR, msg("市级审计人员")),
)
ROLE: dict[str, Role] = {r.code: r for r in ROLES_ALL}
ROLE_LABELS: dict[str, Message] = {r.code: r.label for r in ROLES_ALL}
GRANTABLE_ROLES = tuple(r.code for r in ROLES_ALL if r.grantable)
TASK_ROLES = tuple(r.code for r in ROLES_ALL if r.lane)
PERSONAL_ROLES = tuple(r.code for r in ROLES_ALL if r.personal)
LANE_ROLES: dict[str, RoleCode] = {r.lane: r.code for r in ROLES_ALL if r.lane}
READ_ONLY_ROLES = (RoleCode.AUDITOR, RoleCode.CITY_AUDITOR)   # read everything of their units, change nothing


@dataclass(frozen=True)
class Step:
    """One task of a diagram. `stage` groups the steps that play the same part in different
    processes (the draft of a grant and the request of an extension are both filed here)."""

    id: StepId
    label: Message
    processes: tuple[Process, ...]
    status: StatusCode | None = None         # user tasks: the application's status while it waits here
    role: RoleCode | None = None      # user tasks: who does it (from the lane)
    form: str | None = None           # user tasks: forms/<form>
    stage: str = ""
    notes: str = ""


GRANTS = (Process.OWNERSHIP_GRANT, Process.USE_RIGHT_GRANT)
AGREEMENTS = (*GRANTS, Process.USE_RIGHT_EXTENSION)
USER_STEPS = (
    Step(StepId.DRAFT, msg("填写申请"), GRANTS, StatusCode.DRAFT, RoleCode.REPRESENTATIVE, "{kind}_draft.schema.json",
         "filed", "团队代表填写成果、团队、赋权条件并附材料；policy.check_draft"),
    Step(StepId.CONSENT, msg("团队成员确认"), GRANTS, StatusCode.CONSENTING, RoleCode.MEMBER, "consent.schema.json",
         "consent", "每位成员书面确认内部分配（多实例，一人一项）"),
    Step(StepId.REVIEW, msg("成果转化部门审查"), GRANTS, StatusCode.IN_REVIEW, RoleCode.TTO, "review.schema.json",
         "review", "资格、排除情形、完整性；可退回或不予通过"),
    Step(StepId.UNIT_DECISION, msg("单位集体决策"), GRANTS, StatusCode.DECIDING, RoleCode.DECIDER,
         "unit_decision.schema.json", "decision", "集体决策记录（会议、日期、结果、异议）"),
    Step(StepId.HANDLE_OBJECTION, msg("公示异议处理"), (Process.PUBLICITY,), StatusCode.PUBLICITY, RoleCode.TTO,
         "objection_handling.schema.json", "objection", "异议不成立 / 不成立并重新公示 / 成立"),
    Step(StepId.AGREEMENT_TERMS, msg("拟定协议条款"), GRANTS, StatusCode.AGREEMENT, RoleCode.TTO,
         "{kind}_terms.schema.json", "terms", "§三(一)4 / §三(二)1 的协议条款"),
    Step(StepId.SIGN_REPRESENTATIVE, msg("团队代表签署"), AGREEMENTS, StatusCode.SIGNING, RoleCode.REPRESENTATIVE,
         "signature.schema.json", "sign", "乙方指定代表电子签名"),
    Step(StepId.SIGN_UNIT, msg("单位签署"), AGREEMENTS, StatusCode.SIGNING, RoleCode.SIGNER, "signature.schema.json",
         "sign", "甲方授权签字人电子签名"),
    Step(StepId.IP_TRANSFER, msg("知识产权权属变更"), GRANTS, StatusCode.IP_TRANSFER, RoleCode.TTO,
         "ip_transfer.schema.json", "transfer", "权属变更或许可备案（机关、编号、日期、证明）"),
    Step(StepId.COMPLETE_ARCHIVE, msg("办结归档"), AGREEMENTS, StatusCode.IP_TRANSFER, RoleCode.TTO,
         "completion.schema.json", "archive", "归档，审计可下载协议与证据包"),
    Step(StepId.EXTENSION_REQUEST, msg("延期申请"), (Process.USE_RIGHT_EXTENSION,), StatusCode.DRAFT,
         RoleCode.REPRESENTATIVE, "extension_request.schema.json", "filed", "§三(二)2 延长使用权"),
    Step(StepId.EXTENSION_REVIEW, msg("延期审查"), (Process.USE_RIGHT_EXTENSION,), StatusCode.IN_REVIEW, RoleCode.TTO,
         "extension_review.schema.json", "review", "履约与转化情况"),
    Step(StepId.EXTENSION_DECISION, msg("延期决策"), (Process.USE_RIGHT_EXTENSION,), StatusCode.DECIDING,
         RoleCode.DECIDER, "unit_decision.schema.json", "decision", "集体决策记录"),
    Step(StepId.SUPPLEMENTARY_TERMS, msg("补充协议条款"), (Process.USE_RIGHT_EXTENSION,), StatusCode.AGREEMENT,
         RoleCode.TTO, "supplementary_terms.schema.json", "terms", "延长年限、到期日、许可费"),
    Step(StepId.CONVERSION_PLAN, msg("拟定转化方案"), (Process.CONVERSION,), StatusCode.DRAFT, RoleCode.TTO,
         "conversion_plan.schema.json", "filed", "转化方式、定价、关联方申报（§三(五)1）"),
    Step(StepId.CONVERSION_CONTRACT, msg("登记转化合同"), (Process.CONVERSION,), StatusCode.AGREEMENT, RoleCode.TTO,
         "conversion_contract.schema.json", "contract", "合同金额与公示价格一致"),
    Step(StepId.DISTRIBUTION_DECISION, msg("收益分配决策"), (Process.DISTRIBUTION,), StatusCode.DECIDING,
         RoleCode.DECIDER, "distribution_decision.schema.json", "filed", "分配方案的集体决策（§三(六)）"),
    Step(StepId.DISTRIBUTION_PAYMENTS, msg("登记奖励发放"), (Process.DISTRIBUTION,), StatusCode.PAYING, RoleCode.TTO,
         "distribution_payments.schema.json", "payments", "逐人登记发放"),
    Step(StepId.CONVERSION_LAPSE, msg("转化期限届满处理"), (Process.CONVERSION_WATCH,), StatusCode.DECIDING,
         RoleCode.TTO, "conversion_lapse.schema.json", "filed", "转化期限届满未转化：延长（附理由）或按协议约定处理"),
)
SERVICE_STEPS = (
    Step(StepId.RECORD_DECISION, msg("生成单位决策记录"), AGREEMENTS, notes="尽职免责证据：谁、何时、依据什么作出决策"),
    Step(StepId.OPEN_PUBLICITY, msg("发布公示"), (Process.PUBLICITY,),
         notes=f"不少于{MIN_PUBLICITY_DAYS}日；计时器在期满后触发"),
    Step(StepId.CLOSE_PUBLICITY, msg("结束公示"), (Process.PUBLICITY,)),
    Step(StepId.RENDER_AGREEMENT, msg("生成协议文本"), AGREEMENTS),
    Step(StepId.FINALIZE_AGREEMENT, msg("协议定稿"), AGREEMENTS, notes="双方签署后的最终文本"),
    Step(StepId.UPDATE_REGISTRY, msg("更新成果库"), AGREEMENTS, notes="§三(三)4 职务科技成果库"),
    Step(StepId.RECORD_CONVERSION, msg("登记成果转化"), (Process.CONVERSION,)),
    Step(StepId.RECORD_DISTRIBUTION, msg("登记收益分配"), (Process.DISTRIBUTION,)),
    Step(StepId.SCHEDULE, msg("计算转化期限与提醒时间"), (Process.CONVERSION_WATCH,)),
    Step(StepId.REMIND_FIRST, msg("第一次提醒"), (Process.CONVERSION_WATCH,), notes="单位设置，默认期满前90日"),
    Step(StepId.REMIND_SECOND, msg("第二次提醒"), (Process.CONVERSION_WATCH,), notes="单位设置，默认期满前30日"),
    Step(StepId.CHECK_LAPSE, msg("核查转化情况"), (Process.CONVERSION_WATCH,)),
    Step(StepId.APPLY_EXTENSION, msg("延长转化期限"), (Process.CONVERSION_WATCH,)),
    Step(StepId.APPLY_SUPPLEMENTARY, msg("按补充协议重新计时"), (Process.CONVERSION_WATCH,),
         notes="§三(二)2 延长使用权的补充协议生效后"),
    Step(StepId.APPLY_CONSEQUENCE, msg("按协议约定处理"), (Process.CONVERSION_WATCH,)),
)
STEP: dict[str, Step] = {s.id: s for s in (*USER_STEPS, *SERVICE_STEPS)}
STEP_LABELS: dict[str, Message] = {s.id: s.label for s in USER_STEPS}
STEP_STATUS: dict[str, StatusCode | None] = {s.id: s.status for s in USER_STEPS}
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
    code: KindCode
    label: Message
    process: Process
    filed_step: StepId                # the step whose form is "the application as filed"
    terms_step: StepId | None = None   # the step that fixes the agreement's terms
    notice: NoticeKind = NoticeKind.GRANT             # what its publicity posts
    grant: bool = False               # a grant (ownership / use right) that conversions can follow
    short: Message | None = None      # the registry's short name of a grant kind
    application: bool = True          # False: a process instance no one applied for (the watch)


KINDS_ALL = (
    Kind(KindCode.OWNERSHIP, msg("赋予所有权"), Process.OWNERSHIP_GRANT, StepId.DRAFT, StepId.AGREEMENT_TERMS,
         grant=True, short=msg("所有权")),
    Kind(KindCode.USE_RIGHT, msg("赋予长期使用权"), Process.USE_RIGHT_GRANT, StepId.DRAFT, StepId.AGREEMENT_TERMS,
         grant=True, short=msg("长期使用权")),
    Kind(KindCode.EXTENSION, msg("延长长期使用权"), Process.USE_RIGHT_EXTENSION, StepId.EXTENSION_REQUEST,
         StepId.SUPPLEMENTARY_TERMS),
    Kind(KindCode.CONVERSION, msg("成果转化"), Process.CONVERSION, StepId.CONVERSION_PLAN, notice=NoticeKind.PRICE),
    Kind(KindCode.DISTRIBUTION, msg("转化收益分配"), Process.DISTRIBUTION, StepId.DISTRIBUTION_DECISION,
         notice=NoticeKind.LEADER_REWARD),
    Kind(KindCode.WATCH, msg("转化期限监督"), Process.CONVERSION_WATCH, StepId.CONVERSION_LAPSE, application=False),
)
KIND: dict[str, Kind] = {k.code: k for k in KINDS_ALL}
KIND_CODES = tuple(KIND)
KIND_LABELS: dict[str, Message] = {k.code: k.label for k in KINDS_ALL}
PROCESS_FOR_KIND: dict[str, Process] = {k.code: k.process for k in KINDS_ALL}
GRANT_KINDS = tuple(k.code for k in KINDS_ALL if k.grant)
APPLICATION_KINDS = tuple(k.code for k in KINDS_ALL if k.application)
GRANT_KIND_SHORT: dict[str, Message | None] = {k.code: k.short for k in KINDS_ALL if k.grant}

NOTICE_KINDS: dict[str, Message] = {NoticeKind.GRANT: msg("赋权公示"), NoticeKind.PRICE: msg("协议定价公示"),
                NoticeKind.LEADER_REWARD: msg("领导人员奖励公示")}

# The achievement registry (职务科技成果库, §三(三)4): registered → granted → converting → converted / left.
REGISTRY_STATES: dict[str, Message] = {
    RegistryState.REGISTERED: msg("在库"), RegistryState.GRANTED: msg("已赋权"), RegistryState.CONVERTING: msg("转化中"),
    RegistryState.CONVERTED: msg("已转化"), RegistryState.LEFT: msg("出库")}

# The two signing parties of an agreement: the step, the stamp's name and the signature's title.
SIGNERS: dict[str, tuple[StepId, str, str, str]] = {
    RoleCode.REPRESENTATIVE: (StepId.SIGN_REPRESENTATIVE, "团队指定代表", "乙方指定代表电子签名", "乙方指定代表"),
    "unit": (StepId.SIGN_UNIT, "单位授权签字人", "甲方授权签字人电子签名", "甲方授权签字人")}
SIGN_STEP_PARTY: dict[str, str] = {step: party for party, (step, *_rest) in SIGNERS.items()}


def check_constraint(column: str, codes: tuple[str, ...] | list[str]) -> str:
    """SQL of a CHECK that `column` holds one of `codes` (models.py and the migration share it)."""
    return f"{column} IN ({', '.join(repr(str(c)) for c in codes)})"


# The database refuses any other value: CHECK constraints in models.py, created by migrations
# 0003_catalogue (frozen copies of the code lists as they were then) and 0004_consts (objections).
# Adding, removing or renaming a code above therefore needs a new migration that drops and re-creates
# that table's constraint with the new list written out as literals (never imported from here: a
# migration is history). tests/test_migrations.py fails until the head-migrated database's
# constraints accept exactly these codes.
CHECKS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "ck_applications_kind": ("applications", "kind", KIND_CODES),
    "ck_applications_status": ("applications", "status", STATUS_CODES),
    "ck_role_grants_role": ("role_grants", "role", GRANTABLE_ROLES),
    "ck_human_tasks_role": ("human_tasks", "role", TASK_ROLES),
    "ck_signatures_role": ("signatures", "role", tuple(SIGNERS)),
    "ck_publicity_notices_kind": ("publicity_notices", "kind", tuple(NOTICE_KINDS)),
    "ck_registry_entries_status": ("registry_entries", "status", tuple(REGISTRY_STATES)),
    "ck_registry_entries_grant_kind": ("registry_entries", "grant_kind", GRANT_KINDS),
    "ck_objections_status": ("objections", "status", tuple(ObjectionStatus)),
    "ck_objections_decision": ("objections", "decision", tuple(ObjectionDecision)),
}


def checks_of(table: str) -> list[tuple[str, str]]:
    """(name, SQL) of each CHECK on `table`."""
    return [(name, check_constraint(column, codes)) for name, (t, column, codes) in CHECKS.items() if t == table]

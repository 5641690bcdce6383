"""The review UI's message catalogue: every visible string, in Simplified Chinese (the default) and English.

The subtype labels repeat `pipeline.taxonomy.SUBTYPE_LABELS` on purpose: the UI does not import the
pipeline (imports flow ingest -> pipeline -> cases <- review_ui); a test keeps the two in step.

>>> t = Translator("en")
>>> t("queue.title"), t("subtype.stall"), t("age.hours", h=2, m=5)
('Review queue', 'Street stall', '2 h 5 min')
>>> Translator("zh-CN")("queue.title")
'待审核队列'
"""

from __future__ import annotations

import re
from datetime import timedelta

LANGUAGES: tuple[str, ...] = ("zh-CN", "en")
DEFAULT_LANGUAGE = "zh-CN"

# key -> (zh-CN, en); placeholders use str.format names.
_MESSAGES: dict[str, tuple[str, str]] = {
    "app.title": ("非现场执法审核", "Non-site enforcement review"),
    "app.lang_switch": ("English", "中文"),
    "app.skip": ("跳到正文", "Skip to content"),
    "nav.queue": ("待审核", "Queue"),
    "nav.signed_in_as": ("{name}（{role}）", "{name} ({role})"),
    "nav.logout": ("退出", "Sign out"),
    "login.title": ("登录", "Sign in"),
    "login.username": ("用户名", "Username"),
    "login.password": ("密码", "Password"),
    "login.submit": ("登录", "Sign in"),
    "login.failed": ("用户名或密码错误。", "Wrong username or password."),
    "login.required": ("请先登录。", "Please sign in first."),
    "point.label": ("{name}（{town}）", "{name} ({town})"),
    "queue.title": ("待审核队列", "Review queue"),
    "queue.count": ("共 {n} 件，最早的在前", "{n} cases, oldest first"),
    "queue.empty": ("队列已清空，暂无待审核案件。", "The queue is empty: no cases waiting for review."),
    "queue.more": ("仅显示最早的 {n} 件。", "Showing the oldest {n} only."),
    "col.id": ("编号", "No."),
    "col.time": ("违法时间", "Time"),
    "col.point": ("点位", "Point"),
    "col.category": ("类别", "Category"),
    "col.party": ("当事人", "Party"),
    "col.confidence": ("置信度", "Confidence"),
    "col.age": ("等待", "Waiting"),
    "case.title": ("案件 {id}", "Case {id}"),
    "case.facts": ("案件信息", "Facts"),
    "case.event_id": ("事件编号", "Event id"),
    "case.point": ("点位", "Point"),
    "case.device": ("设备编号", "Device id"),
    "case.zone": ("区域", "Zone"),
    "case.category": ("类别", "Category"),
    "case.party": ("当事人", "Party"),
    "case.party_unknown": ("未识别", "Not identified"),
    "case.evidence_pending": ("证据上传中", "Evidence pending"),
    "case.evidence_pending_hint": (
        "证据暂存于本机，存储恢复后自动上传；可先按暂存件审核。",
        "Evidence is held on this machine and uploaded when the store is back; it can be reviewed meanwhile.",
    ),
    "case.plate_crop": ("号牌识别图像", "Plate as read"),
    "case.confidence": ("置信度", "Confidence"),
    "case.started_at": ("开始时间", "Started"),
    "case.triggered_at": ("触发时间", "Triggered"),
    "case.ended_at": ("结束时间", "Ended"),
    "case.detected_at": ("发现时间", "Detected"),
    "case.not_ended": ("仍在持续", "Still going on"),
    "case.clip": ("视频片段", "Clip"),
    "case.no_clip": ("本案件没有视频片段。", "This case has no clip."),
    "case.keyframes": ("关键帧", "Key frames"),
    "case.original": ("原始", "Original"),
    "case.annotated": ("标注", "Annotated"),
    "keyframe.first_seen": ("首次发现", "First seen"),
    "keyframe.after_dwell": ("超时停留", "After the dwell time"),
    "keyframe.stood_since": ("最早可见", "In view since"),
    "keyframe.best": ("最佳画面 {n}", "Best view {n}"),
    "case.other_evidence": ("其他证据", "Other evidence"),
    "case.manifest": ("证据清单", "Evidence manifest"),
    "case.manifest_missing": ("证据清单缺失或无法读取。", "The evidence manifest is missing or unreadable."),
    "case.manifest_hash_ok": ("清单哈希与立案记录一致。", "The manifest's hash matches the case record."),
    "case.manifest_hash_bad": ("清单哈希与立案记录不一致！", "The manifest's hash does NOT match the case record!"),
    "case.history": ("流转记录", "History"),
    "case.history_empty": ("暂无流转记录。", "No transitions yet."),
    "case.timezone": ("时间均为北京时间。", "Times are China Standard Time."),
    "case.back": ("返回队列", "Back to the queue"),
    "case.prev": ("上一件", "Previous"),
    "case.next": ("下一件", "Next"),
    "hist.reason": ("理由：{reason}", "Reason: {reason}"),
    "hist.corrected_plate": ("更正车牌：{old} → {new}", "Plate corrected: {old} → {new}"),
    "hist.corrected_subtype": ("更正细类：{old} → {new}", "Subtype corrected: {old} → {new}"),
    "correct.title": ("审核更正", "Corrections"),
    "correct.plate": ("车牌号", "Plate"),
    "correct.subtype": ("违法细类", "Subtype"),
    "correct.save": ("保存车牌", "Save plate"),
    "correct.machine_read": ("机器识别：{value}", "As the machine read it: {value}"),
    "error.correction": ("未更正：{detail}", "Not corrected: {detail}"),
    "flash.corrected_plate": ("车牌已更正：{old} → {new}。", "Plate corrected: {old} → {new}."),
    "flash.corrected_subtype": ("违法细类已更正。", "Subtype corrected."),
    "clip.tools": ("视频播放控制", "Clip controls"),
    "clip.speed": ("速度", "Speed"),
    "clip.frame": ("逐帧", "Frame"),
    "clip.zones": ("区域", "Zones"),
    "actor.pipeline": ("自动识别", "automatic detection"),
    "decide.title": ("审核结论", "Decision"),
    "decide.hint": (
        "证据须真实、清楚、完整、准确；时间、地点、事实或车牌不清的，予以作废。",
        "Evidence must be true, clear, complete and accurate; void it if the time, place, facts or plate are unclear.",
    ),
    "decide.confirm": ("确认有效", "Confirm"),
    "decide.void": ("作废", "Void"),
    "decide.reason": ("作废理由", "Reason for voiding"),
    "decide.reason_placeholder": ("例如：车牌不清、误检、已离开", "e.g. plate unreadable, false detection"),
    "decide.view_only": ("您的角色只能查看，不能审核。", "Your role may view cases but not review them."),
    "decide.done": ("本案件已审核，状态：{state}。", "This case has been reviewed: {state}."),
    "flash.confirmed": ("案件 {id} 已确认。", "Case {id} confirmed."),
    "flash.voided": ("案件 {id} 已作废。", "Case {id} voided."),
    "error.already_decided": (
        "该案件已被审核，您的结论未生效。",
        "This case was already decided; your decision was not applied.",
    ),
    "error.reason_required": ("作废必须填写理由。", "Voiding needs a reason."),
    "error.reason_too_long": ("理由不能超过 {n} 个字。", "The reason may not exceed {n} characters."),
    "error.invalid_transition": ("无法变更：{detail}", "Cannot change the case: {detail}"),
    "error.forbidden": ("您的角色无权进行此操作。", "Your role may not do this."),
    "error.csrf": ("页面已过期，请重试。", "The page has expired; please try again."),
    "error.not_found": ("找不到该页面或案件。", "Page or case not found."),
    "error.title": ("出错了", "Something went wrong"),
    "nav.parties": ("当事人", "Parties"),
    "parties.title": ("当事人", "Parties"),
    "parties.count": ("共 {n} 个", "{n} parties"),
    "parties.empty": (
        "尚无当事人：可在此登记，或用 feixian parties import 导入。",
        "No parties yet: add them here, or import them with feixian parties import.",
    ),
    "party.back": ("返回当事人列表", "Back to the parties"),
    "party.kind": ("类型", "Kind"),
    "party_kind.merchant": ("商户", "Merchant"),
    "party_kind.vehicle": ("车辆", "Vehicle"),
    "party.name": ("名称", "Name"),
    "party.shop_or_plate": ("店招 / 车牌", "Shop / plate"),
    "party.shop": ("店招", "Shop"),
    "party.plate": ("车牌", "Plate"),
    "party.company": ("运输公司", "Transport company"),
    "party.licence_no": ("营业执照号", "Licence number"),
    "party.contact": ("送达联系方式", "Contact for notices"),
    "party.cases": ("案件数", "Cases"),
    "party.risk": ("风险等级", "Risk grade"),
    "risk.low": ("低风险", "Low risk"),
    "risk.medium": ("中风险", "Medium risk"),
    "risk.high": ("高风险", "High risk"),
    "party.risk_detail": (
        "（积分 {score}，{reviewed} 评定，下次评定 {next}）",
        "(score {score}, graded {reviewed}, next grading {next})",
    ),
    "party.next_inspection": ("下次检查", "Next inspection"),
    "party.first_minor": ("首违不罚", "First minor violation"),
    "party.first_minor_yes": (
        "{days} 天内无违法记录：清单内事项的下一次违法可适用首违不罚。",
        "No violation in {days} days: its next violation of a listed kind may be let off with a warning.",
    ),
    "party.first_minor_no": (
        "{days} 天内已有违法记录：不适用首违不罚。",
        "A violation in the last {days} days: no first-minor warning.",
    ),
    "party.history": ("历史案件", "Earlier cases"),
    "party.state": ("状态", "State"),
    "party.penalised": ("已处罚", "penalised"),
    "party.no_cases": ("暂无案件。", "No cases yet."),
    "case_party.title": ("案件 {id} 的当事人", "Party of case {id}"),
    "case_party.back": ("返回案件", "Back to the case"),
    "case_party.link": ("确定当事人", "Pick the party"),
    "case_party.current": ("登记的当事人", "Party on record"),
    "case_party.confirmed_by": ("{name} 确认", "confirmed by {name}"),
    "case_party.automatic": ("自动匹配，待确认", "found automatically, not confirmed yet"),
    "case_party.none": ("尚未确定", "None yet"),
    "case_party.candidates": ("候选当事人", "Candidates"),
    "case_party.confirm": ("确认当事人", "Confirm the party"),
    "case_party.no_candidates": (
        "没有候选：该车牌或区域尚未登记当事人，请先导入。",
        "No candidates: no party is registered for this plate or zone; import it first.",
    ),
    "flash.party_bound": ("案件 {id} 的当事人已确认。", "The party of case {id} is confirmed."),
    "flash.party_saved": ("当事人 {id} 已保存。", "Party {id} is saved."),
    "party.edit": ("修改登记", "Edit the record"),
    "party.zones": ("点位区域", "Zones"),
    "party.changes": ("登记变更记录", "Changes to the record"),
    "party.no_changes": ("暂无变更记录。", "No changes recorded."),
    "party.change_at": ("时间", "Time"),
    "party.change_by": ("操作人", "By"),
    "party.change_action": ("操作", "Change"),
    "party.change_fields": ("变更内容", "Fields"),
    "party.change.created": ("新登记", "added"),
    "party.change.updated": ("修改", "edited"),
    "party_form.new.merchant": ("登记商户", "Add a merchant"),
    "party_form.new.vehicle": ("登记车辆", "Add a vehicle"),
    "party_form.edit": ("修改当事人 {name}", "Edit party {name}"),
    "party_form.cancel": ("取消", "Cancel"),
    "party_form.save": ("保存", "Save"),
    "party_form.point": ("点位", "Point"),
    "party_form.licence_hint": (
        "统一社会信用代码（18 位）或营业执照注册号（15 位）",
        "Unified social credit code (18 characters) or business licence number (15 digits)",
    ),
    "party_form.zones_hint": (
        "多个区域用 ; 分隔。各点位的区域：{zones}",
        "Separate zones with ;. Each point's zones: {zones}",
    ),
    "party_form.refused": ("未保存：请改正标出的项。", "Not saved: correct the fields marked."),
    "keys.title": ("快捷键", "Keyboard"),
    "keys.confirm": ("确认有效", "confirm"),
    "keys.submit_void": ("提交作废", "submit the void"),
    "keys.next": ("下一件", "next case"),
    "keys.prev": ("上一件", "previous case"),
    "keys.play": ("播放/暂停", "play / pause"),
    "keys.speed": ("减慢/加快播放（0.25×–2×）", "slower / faster (0.25×–2×)"),
    "keys.frame": ("暂停后后退/前进一帧", "paused: one frame back / forward"),
    "keys.frame_back": ("后退一帧", "one frame back"),
    "keys.frame_forward": ("前进一帧", "one frame forward"),
    "keys.zones": ("显示/隐藏区域", "show / hide the zones"),
    "keys.subtype": ("更改违法细类：s 后按编号", "change the subtype: s, then its number"),
    "keys.plate": ("编辑车牌（Enter 保存）", "edit the plate (Enter saves)"),
    "keys.queue": ("返回队列", "back to the queue"),
    "keys.open": ("打开所选案件", "open the selected case"),
    "keys.move": ("上下移动", "move down / up"),
    "keys.void_numbered": (
        "作废：按 v 再按理由编号（0 为自填理由）",
        "void: v, then the reason's number (0: type a reason)",
    ),
    "keys.help_enter": ("队列：打开所选案件；案件：确认有效", "queue: open the selected case; case: confirm"),
    "keys.cancel": ("取消作废或细类选择、关闭帮助", "cancel the void or subtype choice, close this help"),
    "keys.help": ("显示/隐藏快捷键帮助", "show / hide this keyboard help"),
    "claim.held_by": (
        "{name} 正在审核此案件（认领至 {until}），认领期间您不能审核。",
        "{name} is reviewing this case (claimed until {until}); you cannot decide it meanwhile.",
    ),
    "claim.yours": ("您已认领此案件，至 {until}；他人在此之前不能审核。", "You hold this case until {until}."),
    "col.claim": ("认领", "Claimed by"),
    "col.state": ("状态", "State"),
    "queue.filter": ("筛选", "Filter"),
    "queue.all": ("全部", "All"),
    "queue.town": ("镇街", "Town"),
    "queue.detected_from": ("发现日期自", "Detected from"),
    "queue.detected_to": ("至", "to"),
    "role.reviewer": ("审核员", "reviewer"),
    "role.legal": ("法制审核员", "legal reviewer"),
    "role.supervisor": ("主管", "supervisor"),
    "role.admin": ("管理员", "administrator"),
    "role.ops": ("运维", "operations"),
    "category.occupation": ("市容占道", "Street occupation"),
    "category.vehicle": ("车辆", "Vehicle"),
    "subtype.stall": ("占道设摊", "Street stall"),
    "subtype.shopfront": ("出店经营", "Trading outside the shop"),
    "subtype.goods": ("乱堆物料", "Piled goods"),
    "subtype.dirty": ("车容不洁", "Dirty vehicle body"),
    "subtype.uncovered": ("渣土车未密闭", "Uncovered load"),
    "state.detected": ("待审核", "Awaiting review"),
    "state.confirmed": ("已确认", "Confirmed"),
    "state.voided": ("已作废", "Voided"),
    "state.warned": ("已警告", "Warned"),
    "state.filed": ("已立案", "Filed"),
    "state.legal_review": ("法制审核", "Legal review"),
    "state.notified": ("已告知", "Notified"),
    "state.statement": ("当事人陈述", "Statement made"),
    "state.decided": ("已决定", "Decided"),
    "state.delivered": ("已送达", "Delivered"),
    "state.published": ("已公示", "Published"),
    "state.withdrawn": ("已撤回公示", "Publication withdrawn"),
    "state.executed": ("已执行", "Executed"),
    "state.closed": ("已结案", "Closed"),
    "ops.title": ("运行监控", "Operations"),
    "ops.summary": (
        "{up}/{points} 个点位运行中 · 共 {fps} 帧/秒 · 检测负载 {load} 核",
        "{up} of {points} points up · {fps} frames/s in all · detector load {load} cores",
    ),
    "ops.refresh": ("每 {s} 秒自动刷新", "Refreshes every {s} s"),
    "ops.points": ("点位", "Points"),
    "ops.no_points": ("本进程没有运行任何点位。", "This process runs no points."),
    "ops.col.state": ("状态", "State"),
    "ops.col.last_frame": ("最后一帧", "Last frame"),
    "ops.col.fps": ("帧率（帧/秒）", "Frames/s"),
    "ops.col.load": ("检测负载", "Detector load"),
    "ops.col.pending": ("排队帧", "Queued"),
    "ops.col.dropped": ("丢弃帧", "Dropped"),
    "ops.up": ("运行", "up"),
    "ops.down": ("停止", "down"),
    "ops.never": ("尚无", "none yet"),
    "ops.seconds": ("{s}秒", "{s} s"),
    "ops.ago": ("{age}前", "{age} ago"),
    "ops.chart_fps": ("最近 {min} 分钟帧率", "Frames/s over the last {min} min"),
    "ops.chart_load": ("最近 {min} 分钟检测负载", "Detector load over the last {min} min"),
    "ops.load_core": ("{p}% 单核", "{p}% of a core"),
    "ops.cases": ("案件办理时长（目标 {h} 小时）", "Case ages (target {h} h)"),
    "ops.cases_hint": (
        "从发现起计；已作废、已执行、已结案的不计入目标。",
        "Counted from discovery; voided, executed and closed cases are off the clock.",
    ),
    "ops.col.count": ("件数", "Cases"),
    "ops.col.oldest": ("最久", "Oldest"),
    "ops.col.over_target": ("超时", "Over target"),
    "drop.out_of_order": ("时间倒序", "out of order"),
    "drop.future": ("时间超前", "stamped ahead"),
    "drop.undecodable": ("无法解码", "undecodable"),
    "drop.busy": ("队列已满", "queue full"),
    "drop.rate_limited": ("超过限速", "over the rate limit"),
    "drop.disk_full": ("磁盘已满", "disk full"),
    "drop.too_large": ("过大", "too large"),
    "drop.too_many_pixels": ("像素过多", "too many pixels"),
    "drop.not_jpeg": ("非 JPEG", "not a JPEG"),
    "drop.bad_time": ("时间格式错误", "bad capture time"),
    "drop.before_announcement": ("公告之前", "before the announcement"),
    "drop.content_type": ("类型错误", "wrong content type"),
    "nav.supervisor": ("督办", "Supervision"),
    "nav.publicity": ("双公示", "Publicity"),
    "nav.admin": ("账号管理", "Accounts"),
    "sup.title": ("办案时效督办", "Supervision: the clock"),
    "sup.as_of": ("统计截至 {at}", "As of {at}"),
    "sup.to_execution": (
        "从发现到执行（目标 {d} 个工作日）",
        "Discovery to execution (target {d} working days)",
    ),
    "sup.executed": ("已执行", "Executed"),
    "sup.on_time": ("按时执行", "On time"),
    "sup.mean_h": ("平均（小时）", "Mean (h)"),
    "sup.p90_h": ("90% 分位（小时）", "90th percentile (h)"),
    "sup.at_risk_count": ("临期或超期", "At risk or overdue"),
    "sup.target_hint": (
        "期限按工作日计，不含发现当日；等待当事人（整改、陈述、缴款）的时间顺延。剩余不足 {h} 小时即为临期。",
        "Counted in working days, not the day of discovery; time waiting on the party (correction, statement, "
        "payment) is added. Under {h} h left counts as at risk.",
    ),
    "sup.stages": ("各环节停留时长", "Time spent in each stage"),
    "sup.col.stays": ("次数", "Stays"),
    "sup.chart_stages": ("各环节平均与 90% 分位时长（小时）", "Mean and 90th percentile hours per stage"),
    "sup.no_stays": ("尚无已完成的环节。", "No stage has been completed yet."),
    "sup.at_risk": ("临期与超期案件（剩余不足 {h} 小时）", "Cases at risk or overdue (under {h} h left)"),
    "sup.col.due": ("期限", "Due"),
    "sup.col.left": ("剩余", "Left"),
    "sup.hours_left": ("剩 {h} 小时", "{h} h left"),
    "sup.overdue_by": ("超期 {h} 小时", "{h} h overdue"),
    "sup.none_at_risk": ("没有临期或超期的案件。", "No case is at risk or overdue."),
    "sup.throughput": ("每人每日办理量（最近 {n} 天）", "Decisions per person per day (last {n} days)"),
    "sup.days": ("{n} 天", "{n} days"),
    "sup.col.person": ("人员", "Person"),
    "sup.col.role": ("角色", "Role"),
    "sup.col.total": ("合计", "Total"),
    "sup.col.per_day": ("日均", "Per day"),
    "sup.col.daily": ("逐日", "Day by day"),
    "sup.chart_person": ("{name} 最近 {n} 天每日办理量", "Decisions of {name} on each of the last {n} days"),
    "sup.chart_daily": ("最近 {n} 天每日办理总量", "All decisions on each of the last {n} days"),
    "sup.no_decisions": ("最近 {n} 天没有人工办理记录。", "No decisions in the last {n} days."),
    "admin.title": ("账号管理", "Accounts"),
    "admin.count": ("共 {n} 个账号", "{n} accounts"),
    "admin.display_name": ("姓名", "Display name"),
    "admin.role": ("角色", "Role"),
    "admin.role_of": ("{name} 的角色", "Role of {name}"),
    "admin.status": ("状态", "Status"),
    "admin.you": ("（本人）", "(you)"),
    "admin.change_role": ("修改角色", "Change role"),
    "admin.active": ("启用", "Active"),
    "admin.disabled": ("已停用", "Disabled"),
    "admin.disable": ("停用", "Disable"),
    "admin.enable": ("启用", "Enable"),
    "admin.add": ("新增账号", "Add an account"),
    "admin.add_submit": ("新增", "Add"),
    "admin.password_hint": ("密码至少 {n} 个字符。", "At least {n} characters."),
    "admin.error.refused": ("未保存：{detail}", "Not saved: {detail}"),
    "admin.error.own_account": ("不能停用自己的账号。", "You cannot disable your own account."),
    "admin.error.own_role": ("不能修改自己的角色。", "You cannot change your own role."),
    "admin.flash.added": ("已新增账号 {name}（{role}）。", "Account {name} added ({role})."),
    "admin.flash.role": ("已将 {name} 的角色改为 {role}。", "{name} is now {role}."),
    "admin.flash.enabled": ("已启用账号 {name}。", "Account {name} enabled."),
    "admin.flash.disabled": (
        "已停用账号 {name}，其登录会话随即失效。",
        "Account {name} disabled; its sessions end now.",
    ),
    "pub.title": ("双公示", "Publicity (双公示)"),
    "pub.count": ("公示 {n} 件，撤回 {w} 件", "{n} to publish, {w} withdrawn"),
    "pub.download_csv": ("下载 CSV", "Download CSV"),
    "pub.download_json": ("下载 JSON", "Download JSON"),
    "pub.hint": (
        "与 feixian publicity export 导出的内容一致：仅含已作出处罚决定的案件；首违不罚（警告）案件不公示；"
        "不含身份证号、电话、地址和车牌。打码图片由该命令导出。",
        "The same as feixian publicity export writes: decided penalty cases only; first minor (warned) cases are "
        "never published; no ID numbers, phone numbers, addresses or plates. The blurred images come with the command.",
    ),
    "pub.published": ("公示的处罚决定", "Decisions to publish"),
    "pub.withdrawn": ("撤回公示", "Withdrawn from publicity"),
    "pub.col.decision_no": ("决定书文号", "Decision number"),
    "pub.col.decided_on": ("决定日期", "Decided on"),
    "pub.col.party": ("行政相对人", "Party"),
    "pub.col.violation": ("违法行为", "Violation"),
    "pub.col.outcome": ("处罚内容", "Penalty"),
    "pub.col.images": ("图片", "Images"),
    "pub.col.withdrawn_on": ("撤回日期", "Withdrawn on"),
    "pub.none": ("暂无需公示的处罚决定。", "No decision to publish yet."),
    "pub.none_withdrawn": ("没有撤回的公示。", "No publication withdrawn."),
    "age.minutes": ("{m}分钟", "{m} min"),
    "age.hours": ("{h}小时{m}分", "{h} h {m} min"),
    "age.days": ("{d}天{h}小时", "{d} d {h} h"),
    # The procedure after the evidence review (review_ui.routers.procedure, work, notice).
    "nav.work": ("法制工作", "Legal work"),
    "party_kind.person": ("个人", "Person"),
    "party_kind.organisation": ("单位", "Organisation"),
    "move.voided": ("作废", "Void"),
    "move.warned": ("警告并责令改正（首违不罚）", "Warn and order to correct (first minor violation)"),
    "move.filed": ("立案", "File the case"),
    "move.legal_review": ("提交法制审核", "Send to legal review"),
    "move.notified": ("发出告知书", "Issue the notice"),
    "move.statement": ("记录当事人陈述申辩", "Record the party's statement"),
    "move.decided": ("作出处罚决定", "Decide"),
    "move.delivered": ("决定书已送达", "Record the delivery"),
    "move.published": ("公示", "Publish"),
    "move.withdrawn": ("撤回公示", "Withdraw the publication"),
    "move.executed": ("已执行", "Record the execution"),
    "move.closed": ("结案", "Close the case"),
    "procedure.title": ("办案流程", "Procedure"),
    "procedure.none": ("您的角色在此环节无可办事项。", "Your role has no step to take at this stage."),
    "procedure.fine_now": ("罚款", "Fine"),
    "procedure.yuan": ("{n} 元", "{n} yuan"),
    "procedure.party_kind": ("当事人类别", "Party kind"),
    "procedure.party_kind_unset": ("不变", "Unchanged"),
    "procedure.recheck_due": ("责令改正期限", "Correct by"),
    "procedure.statement_due": ("陈述申辩期至", "Statement window until"),
    "procedure.waived": ("当事人已放弃", "waived by the party"),
    "procedure.sets_recheck": (
        "责令改正期限将至 {until}，届时复查。",
        "The order to correct runs until {until}: recheck then.",
    ),
    "procedure.sets_window": ("陈述申辩期将至 {until}。", "The statement window will run until {until}."),
    "procedure.fine": ("罚款金额（元）", "Fine (yuan)"),
    "procedure.waiver": ("当事人书面放弃陈述申辩", "The party waived its statement in writing"),
    "procedure.reason": ("理由或说明（可选）", "Reason or note (optional)"),
    "procedure.reason_required": ("理由（必填）", "Reason (required)"),
    "procedure.refused": ("未能办理：{detail}", "Refused: {detail}"),
    "procedure.review_first": (
        "待审核案件须先在审核结论中确认或作废。",
        "A case awaiting review is first confirmed or voided in its evidence review.",
    ),
    "procedure.bad.to": ("未知的目标环节。", "Unknown target state."),
    "procedure.bad.reason": ("理由不能超过 {n} 个字。", "The reason may not exceed {n} characters."),
    "procedure.bad.fine_yuan": ("罚款须为 0 至 {max} 的整数元。", "A fine is a whole number of yuan from 0 to {max}."),
    "procedure.bad.party_kind": ("当事人类别须为个人或单位。", "The party kind is a person or an organisation."),
    "flash.moved": ("案件 {id} 现为：{state}。", "Case {id} is now: {state}."),
    "work.title": ("法制工作队列", "Legal work queue"),
    "work.count": (
        "共 {n} 件办理中，{risk} 件临近或超过时限（其中 {overdue} 件超时），剩余时间最少的在前",
        "{n} open cases, {risk} at risk or overdue ({overdue} overdue), least time left first",
    ),
    "work.target": (
        "目标：发现后 {days} 个工作日内执行完毕",
        "Target: executed within {days} working days of discovery",
    ),
    "work.fine": ("罚款（元）", "Fine (yuan)"),
    "work.due": ("时限", "Due"),
    "work.left": ("剩余", "Time left"),
    "work.at_risk": ("临期", "at risk"),
    "work.overdue": ("超时 {age}", "overdue by {age}"),
    "work.more": ("仅显示剩余时间最少的 {n} 件。", "Showing the {n} with the least time left only."),
    "work.empty": ("暂无办理中的案件。", "No open cases past the evidence review."),
    "notice.open": ("查看告知书", "Open the notice"),
    "notice.not_yet": (
        "该案件尚未发出告知书，告知后方可查看。",
        "This case has not been notified yet: its notice exists once it is.",
    ),
    "notice.title": ("行政处罚事先告知书", "Advance notice of an administrative penalty"),
    "notice.print_hint": (
        "用浏览器打印（Ctrl+P）即得纸质告知书。",
        "Print it from the browser (Ctrl+P) for the paper notice.",
    ),
    "notice.ref": ("案件编号：{id}", "Case no. {id}"),
    "notice.to": ("{party}：", "To {party}:"),
    "notice.to_unknown": ("当事人：", "To the party:"),
    "notice.facts": ("一、违法事实", "1. Facts"),
    "notice.facts_text": (
        "经查，{time}，在{place}，非现场执法设备（编号 {device}）记录到{violation}的违法行为，记录经本机关审核确认。",
        "On {time}, at {place}, the non-site enforcement device {device} recorded a violation: {violation}. "
        "The record was reviewed and confirmed by this agency.",
    ),
    "notice.gps": ("经纬度", "GPS"),
    "notice.as_recorded": ("记录的店招或号牌", "Shop sign or plate as recorded"),
    "notice.evidence": ("二、证据", "2. Evidence"),
    "notice.no_frames": ("本案件无关键帧图像，证据见视频记录。", "This case has no key frames: see the recorded clip."),
    "notice.penalty": ("三、拟作出的行政处罚", "3. Proposed penalty"),
    "notice.penalty_text": (
        "依据{basis}，本机关拟对你（单位）作出罚款人民币 {fine} 元的行政处罚。",
        "Under {basis}, this agency proposes a fine of {fine} yuan.",
    ),
    "notice.basis_unknown": ("相关法律规定", "the applicable provisions"),
    "notice.hearing": (
        "本案拟作较大数额罚款，你（单位）有权要求听证，须在收到本告知书之日起五日内提出（《中华人民共和国行政处罚法》第六十三条、第六十四条）。",
        "The proposed fine is large: you may ask for a hearing within five days of receiving this notice "
        "(Administrative Penalty Law, arts. 63 and 64).",
    ),
    "notice.statement": ("四、陈述和申辩", "4. Your statement"),
    "notice.statement_right": (
        "根据《中华人民共和国行政处罚法》第四十四条、第四十五条，你（单位）有权进行陈述和申辩；本机关不因陈述、申辩而加重处罚。",
        "Under the Administrative Penalty Law, arts. 44 and 45, you may state your case and defend yourself; "
        "a statement never makes the penalty heavier.",
    ),
    "notice.statement_how": (
        "请于 {until} 前向{agency}提出：递交或邮寄书面陈述、申辩材料，"
        "或到该机关当面陈述（由执法人员记录），并注明案件编号 {id}。",
        "Make it before {until} to {agency}: hand in or post a written statement, or make it in person at the "
        "agency (an officer records it), quoting case no. {id}.",
    ),
    "notice.statement_late": (
        "逾期未提出的，视为放弃陈述和申辩的权利，本机关将依法作出处罚决定。",
        "Without a statement by then, the right to make one is taken as waived and the agency decides.",
    ),
    "notice.record": ("存证", "Record"),
    "notice.chain": ("流转记录", "Audit trail"),
    "notice.chain_link": ("第 {seq} 条，哈希", "entry {seq}, hash"),
    "notice.verify_hint": (
        "告知记录与证据清单的哈希可用 feixian evidence verify 核验。",
        "The notice's entry and the evidence manifest can be checked with feixian evidence verify.",
    ),
}


class Translator:
    """Looks messages up for one language; an unknown key is a programming error and raises KeyError."""

    def __init__(self, lang: str):
        if lang not in LANGUAGES:
            raise ValueError(f"unsupported language {lang!r}; choose one of {LANGUAGES}")
        self.lang = lang
        self._column = LANGUAGES.index(lang)

    def __call__(self, key: str, **values: object) -> str:
        text = self.template(key)
        return text.format(**values) if values else text

    def template(self, key: str) -> str:
        """The message with its `{placeholders}` unfilled."""
        return _MESSAGES[key][self._column]

    def label(self, prefix: str, value: str | None) -> str:
        """The label of a domain value (`state.voided`); a value the catalogue does not know yet is
        shown as stored rather than hiding the case."""
        key = f"{prefix}.{value}"
        return self(key) if key in _MESSAGES else str(value)

    def keyframe(self, label: str) -> str:
        """A key frame's label: the rules name them `first_seen`, `after_dwell` and `best_<n>`, the worker
        `stood_since` (an item revealed behind another, dated from its pixels).

        >>> Translator("en").keyframe("best_2"), Translator("en").keyframe("custom")
        ('Best view 2', 'custom')
        """
        m = re.fullmatch(r"best_(\d+)", label)
        return self("keyframe.best", n=m[1]) if m else self.label("keyframe", label)

    def age(self, span: timedelta) -> str:
        """How long a case has waited, to the minute.

        >>> Translator("zh-CN").age(timedelta(days=1, hours=3, minutes=7))
        '1天3小时'
        """
        minutes = max(0, int(span.total_seconds() // 60))
        days, rest = divmod(minutes, 24 * 60)
        hours, mins = divmod(rest, 60)
        if days:
            return self("age.days", d=days, h=hours)
        if hours:
            return self("age.hours", h=hours, m=mins)
        return self("age.minutes", m=mins)


def message_keys() -> frozenset[str]:
    return frozenset(_MESSAGES)


def pick_language(requested: str | None, stored: str | None) -> str:
    """The language for a request: an explicit `?lang=` wins, then the session's, then zh-CN.

    >>> pick_language("en", None), pick_language("fr", "en"), pick_language(None, None)
    ('en', 'en', 'zh-CN')
    """
    for lang in (requested, stored):
        if lang in LANGUAGES:
            return lang
    return DEFAULT_LANGUAGE

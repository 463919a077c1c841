// Every string the client shows, in one table. The browser's language picks; the switch
// (stored in localStorage) overrides. `t(key, {name: value})` fills {name} placeholders.

const STRINGS = {
  en: {
    "app.name": "SoLoMo",
    "lang.switch": "中文",
    "nav.home": "Home", "nav.nearby": "Nearby", "nav.topics": "Topics", "nav.wallet": "Wallet",
    "nav.me": "Me", "nav.stores": "My stores", "nav.queue": "Queue", "nav.words": "Words",
    "nav.audit": "Audit", "nav.users": "Users",
    "auth.login": "Log in", "auth.register": "Sign up", "auth.username": "Username",
    "auth.password": "Password", "auth.display_name": "Display name (optional)",
    "auth.role": "Account type", "auth.role.user": "User", "auth.role.merchant": "Merchant",
    "auth.no_account": "No account yet? Sign up", "auth.have_account": "Have an account? Log in",
    "auth.logout": "Log out", "auth.welcome": "Check in, share, and catch offers around you.",
    "socket.open": "live", "socket.closed": "offline",
    "loc.title": "Your location", "loc.device": "Use this device's location", "loc.apply": "Use these coordinates",
    "loc.lat": "Latitude", "loc.lng": "Longitude", "loc.presets": "Places",
    "loc.source.device": "device", "loc.source.picked": "picked", "loc.source.default": "default",
    "loc.denied": "Location is not available; pick a place instead.",
    "place.peoples_square": "People's Square", "place.bund": "The Bund", "place.jingan": "Jing'an Temple",
    "place.xintiandi": "Xintiandi",
    "feed.home": "Home", "feed.local": "Around you", "feed.empty": "Nothing here yet.",
    "feed.more": "Load more", "feed.new_posts": "{n} new — show", "feed.compose": "What's happening nearby?",
    "feed.with_location": "Attach my location", "feed.publish": "Post", "feed.posted": "Posted",
    "post.like": "Like", "post.comments": "{n} comments", "post.report": "Report", "post.delete": "Delete",
    "post.deleted": "This post was removed.", "post.status.pending_review": "Waiting for review",
    "post.status.hidden": "Hidden", "post.status.removed": "Removed", "post.checkin": "checked in",
    "post.reported": "Reported, thank you", "post.confirm_delete": "Delete this post?",
    "report.reason": "Why?", "report.spam": "Spam", "report.abuse": "Abuse", "report.illegal": "Illegal",
    "report.other": "Other", "report.note": "Note (optional)", "report.send": "Send report",
    "comment.write": "Write a comment", "comment.reply_to": "Replying to @{name}", "comment.reply": "Reply",
    "comment.send": "Send", "comment.cancel": "Cancel", "comment.in_reply": "reply to @{name}",
    "comment.none": "No comments yet.", "comment.title": "Comments",
    "cat.food": "Food", "cat.cafe": "Café", "cat.bar": "Bar", "cat.shopping": "Shopping", "cat.grocery": "Grocery",
    "cat.entertainment": "Entertainment", "cat.sports": "Sports", "cat.outdoors": "Outdoors", "cat.travel": "Travel",
    "cat.hotel": "Hotel", "cat.services": "Services", "cat.health": "Health", "cat.education": "Education",
    "cat.other": "Other",
    "stores.nearby": "Stores nearby", "stores.all": "All categories", "stores.radius": "Within",
    "stores.none": "No stores within this radius.", "stores.checkins": "{n} check-ins",
    "stores.followers": "{n} followers", "stores.mayor": "Mayor: {name}", "stores.no_mayor": "No mayor yet",
    "stores.posts": "Posts here",
    "checkin.button": "Check in", "checkin.text": "Say something (optional)", "checkin.done": "Checked in at {store}",
    "follow.follow": "Follow", "follow.unfollow": "Unfollow", "follow.followers": "Followers",
    "follow.following": "Following",
    "topics.hot": "Hot topics", "topics.open": "Open topic", "topics.placeholder": "topic",
    "topics.posts": "{n} posts", "topics.none": "No trending topics right now.",
    "wallet.title": "My vouchers", "wallet.none": "No vouchers yet. Offers nearby pop up here.",
    "wallet.show_qr": "Show code",
    "voucher.code": "Code", "voucher.status.claimed": "Ready to use", "voucher.status.redeemed": "Redeemed",
    "voucher.status.expired": "Expired", "voucher.expires": "Valid until {time}",
    "voucher.show_at_counter": "Show this at the counter",
    "offer.popup": "Offer nearby", "offer.claim": "Claim", "offer.dismiss": "Not now",
    "offer.distance": "{m} m away", "offer.stock": "{left} of {stock} left", "offer.unlimited": "No limit",
    "offer.claimed": "Voucher claimed",
    "me.profile": "Profile", "me.role": "Role", "me.language": "Language", "me.location": "Location",
    "user.posts": "Posts", "user.suspend": "Suspend", "user.unsuspend": "Unsuspend",
    "merchant.stores": "My stores", "merchant.none": "No stores yet — create your first one.",
    "merchant.create": "Create a store", "merchant.name": "Name", "merchant.category": "Category",
    "merchant.address": "Address", "merchant.radius": "Check-in radius (m)", "merchant.at_location": "At {lat}, {lng}",
    "merchant.created": "Store created", "merchant.console": "Console",
    "merchant.post": "Post to followers", "merchant.post_text": "News for your followers",
    "merchant.offer": "Broadcast an offer", "merchant.offer_title": "Title",
    "merchant.offer_description": "Description", "merchant.offer_radius": "Radius (m)",
    "merchant.offer_stock": "Stock (empty = no limit)", "merchant.offer_hours": "Valid for (hours)",
    "merchant.offer_send": "Broadcast", "merchant.offer_sent": "Offer broadcast",
    "merchant.offer_held": "Offer held for a moderator's review; it is pushed once approved",
    "merchant.redeem": "Redeem a code", "merchant.redeem_code": "Voucher code", "merchant.redeem_send": "Redeem",
    "merchant.redeemed": "Redeemed: {code}", "merchant.funnel": "Offer funnel",
    "merchant.stats": "{checkins} check-ins · {visitors} visitors · {followers} followers",
    "merchant.no_offers": "No offers yet.",
    "funnel.pushed": "Pushed", "funnel.claimed": "Claimed", "funnel.redeemed": "Redeemed",
    "mod.queue": "Moderation queue", "mod.empty": "The queue is empty.", "mod.reason": "Reason",
    "mod.approve": "Approve", "mod.hide": "Hide", "mod.remove": "Remove", "mod.restore": "Restore",
    "mod.select_all": "Select all", "mod.bulk": "Apply to {n} selected", "mod.done": "{n} done",
    "mod.reports": "Reports", "mod.flags": "Flags", "mod.suspend_author": "Suspend author",
    "mod.words": "Word lists", "mod.block": "Block (rejected)", "mod.review": "Review (held)",
    "mod.one_per_line": "One word per line", "mod.save": "Save", "mod.saved": "Saved",
    "mod.audit": "Audit log", "mod.users": "Suspend or restore a user", "mod.user_id": "User id",
    "mod.reason_required": "Give a reason", "mod.held_offer": "Offer held for review",
    "common.error": "Something went wrong", "common.loading": "Loading…", "common.save": "Save",
    "common.close": "Close", "common.back": "Back", "common.ok": "OK",
    "notif.like": "{user} liked your post", "notif.comment": "{user} commented on your post",
    "notif.mention": "{user} mentioned you", "notif.follow": "{user} followed you",
    "notif.other": "New notification",
    "err.network": "Cannot reach the server. Check your connection.",
    "err.too_far": "You are too far from this store to check in. Get closer and try again.",
    "err.checkin_too_soon": "You checked in here less than an hour ago. Try again later.",
    "err.impossible_travel": "That is too far from your last check-in to have got here so fast.",
    "err.invalid_credentials": "Wrong username or password.",
    "err.username_taken": "That username is taken.",
    "err.account_suspended": "This account is suspended.",
    "err.unauthorized": "Please log in again.",
    "err.forbidden": "You are not allowed to do that.",
    "err.not_found": "Not found.",
    "err.sold_out": "Sorry, this offer is sold out.",
    "err.too_many_live_offers": "This store already has 5 live offers. End one first.",
    "err.offer_ended": "This offer has ended.",
    "err.invalid_topic": "A topic cannot contain / or \\.",
    "err.idempotency_in_progress": "Still sending the previous request. Try again in a moment.",
    "err.offer_expired": "This offer has expired.",
    "err.already_redeemed": "This code was already redeemed.",
    "err.unknown_code": "No voucher has this code.",
    "err.voucher_expired": "This voucher has expired.",
    "err.content_rejected": "This text contains words that are not allowed.",
    "err.cannot_follow_self": "You cannot follow yourself.",
    "err.rate_limited": "Too many requests. Wait a moment and try again.",
    "err.payload_too_large": "That is too long.",
    "err.invalid": "Please check what you entered.",
    "err.unavailable": "The service is busy. Try again shortly.",
    // manage (issue 16: profile, password, account deletion, store editing, offer list)
    "manage.back": "Back", "manage.save": "Save", "manage.saved": "Saved",
    "manage.profile": "Edit profile", "manage.display_name": "Display name", "manage.bio": "Bio",
    "manage.password": "Change password", "manage.old_password": "Current password",
    "manage.new_password": "New password (at least 8 characters)", "manage.password_save": "Change password",
    "manage.password_note": "Your other devices will be signed out.",
    "manage.password_saved": "Password changed. Other devices are signed out.",
    "manage.wrong_password": "That password is not right.",
    "manage.delete": "Delete account", "manage.delete_confirm": "Delete my account for good",
    "manage.delete_what": "Your posts and comments disappear, and your check-ins, location, likes and follows are erased. This cannot be undone.",
    "manage.delete_kept": "Your username stays reserved so nobody can pretend to be you.",
    "manage.password_confirm": "Your password, to confirm", "manage.deleted": "Your account was deleted.",
    "manage.store_edit": "Edit store", "manage.pick_location": "Pick the location",
    "manage.offers": "Offers of {name}", "manage.offers_link": "Offers",
    "manage.end": "End now", "manage.end_confirm": "End “{title}” now? Vouchers already claimed stay valid.",
    "manage.ended": "Offer ended", "manage.claimed": "Claimed", "manage.until": "until",
    "manage.status.live": "Live", "manage.status.pending_review": "In review", "manage.status.ended": "Ended",
    "manage.status.expired": "Expired", "manage.status.sold_out": "Sold out",
    "err.invalid_transition": "That is no longer possible.", "err.invalid_media": "Choose an image you uploaded.",
    "manage.offers_from_unfollowed": "Offers from nearby stores I don't follow",
  },
  zh: {
    "app.name": "SoLoMo",
    "lang.switch": "EN",
    "nav.home": "首页", "nav.nearby": "附近", "nav.topics": "话题", "nav.wallet": "卡券",
    "nav.me": "我", "nav.stores": "我的门店", "nav.queue": "审核", "nav.words": "词表",
    "nav.audit": "日志", "nav.users": "用户",
    "auth.login": "登录", "auth.register": "注册", "auth.username": "用户名",
    "auth.password": "密码", "auth.display_name": "昵称（可选）",
    "auth.role": "账号类型", "auth.role.user": "用户", "auth.role.merchant": "商家",
    "auth.no_account": "还没有账号？注册", "auth.have_account": "已有账号？登录",
    "auth.logout": "退出登录", "auth.welcome": "签到、分享，发现身边的优惠。",
    "socket.open": "在线", "socket.closed": "离线",
    "loc.title": "你的位置", "loc.device": "使用本机定位", "loc.apply": "使用这个坐标",
    "loc.lat": "纬度", "loc.lng": "经度", "loc.presets": "地点",
    "loc.source.device": "定位", "loc.source.picked": "手选", "loc.source.default": "默认",
    "loc.denied": "无法获取定位，请手动选择地点。",
    "place.peoples_square": "人民广场", "place.bund": "外滩", "place.jingan": "静安寺",
    "place.xintiandi": "新天地",
    "feed.home": "关注", "feed.local": "身边", "feed.empty": "这里还没有内容。",
    "feed.more": "加载更多", "feed.new_posts": "{n} 条新内容，点击查看", "feed.compose": "附近有什么新鲜事？",
    "feed.with_location": "附带我的位置", "feed.publish": "发布", "feed.posted": "已发布",
    "post.like": "赞", "post.comments": "{n} 条评论", "post.report": "举报", "post.delete": "删除",
    "post.deleted": "这条微博已被删除。", "post.status.pending_review": "审核中",
    "post.status.hidden": "已隐藏", "post.status.removed": "已移除", "post.checkin": "签到了",
    "post.reported": "已举报，谢谢", "post.confirm_delete": "删除这条微博？",
    "report.reason": "举报原因", "report.spam": "垃圾广告", "report.abuse": "辱骂攻击", "report.illegal": "违法信息",
    "report.other": "其他", "report.note": "补充说明（可选）", "report.send": "提交举报",
    "comment.write": "写评论", "comment.reply_to": "回复 @{name}", "comment.reply": "回复",
    "comment.send": "发送", "comment.cancel": "取消", "comment.in_reply": "回复 @{name}",
    "comment.none": "还没有评论。", "comment.title": "评论",
    "cat.food": "美食", "cat.cafe": "咖啡", "cat.bar": "酒吧", "cat.shopping": "购物", "cat.grocery": "超市",
    "cat.entertainment": "娱乐", "cat.sports": "运动", "cat.outdoors": "户外", "cat.travel": "旅行",
    "cat.hotel": "酒店", "cat.services": "生活服务", "cat.health": "健康", "cat.education": "教育",
    "cat.other": "其他",
    "stores.nearby": "附近门店", "stores.all": "全部分类", "stores.radius": "范围",
    "stores.none": "这个范围内没有门店。", "stores.checkins": "{n} 次签到",
    "stores.followers": "{n} 位粉丝", "stores.mayor": "店长：{name}", "stores.no_mayor": "暂无店长",
    "stores.posts": "这里的微博",
    "checkin.button": "签到", "checkin.text": "说点什么（可选）", "checkin.done": "已在 {store} 签到",
    "follow.follow": "关注", "follow.unfollow": "取消关注", "follow.followers": "粉丝",
    "follow.following": "关注",
    "topics.hot": "热门话题", "topics.open": "查看话题", "topics.placeholder": "话题",
    "topics.posts": "{n} 条微博", "topics.none": "暂时没有热门话题。",
    "wallet.title": "我的卡券", "wallet.none": "还没有卡券，附近的优惠会在这里弹出。",
    "wallet.show_qr": "出示券码",
    "voucher.code": "券码", "voucher.status.claimed": "可使用", "voucher.status.redeemed": "已核销",
    "voucher.status.expired": "已过期", "voucher.expires": "有效期至 {time}",
    "voucher.show_at_counter": "请在柜台出示",
    "offer.popup": "附近优惠", "offer.claim": "领取", "offer.dismiss": "暂不",
    "offer.distance": "距你 {m} 米", "offer.stock": "剩余 {left}/{stock}", "offer.unlimited": "不限量",
    "offer.claimed": "已领取",
    "me.profile": "个人资料", "me.role": "角色", "me.language": "语言", "me.location": "位置",
    "user.posts": "微博", "user.suspend": "封禁", "user.unsuspend": "解封",
    "merchant.stores": "我的门店", "merchant.none": "还没有门店，先创建一个吧。",
    "merchant.create": "创建门店", "merchant.name": "名称", "merchant.category": "分类",
    "merchant.address": "地址", "merchant.radius": "签到半径（米）", "merchant.at_location": "位于 {lat}, {lng}",
    "merchant.created": "门店已创建", "merchant.console": "管理",
    "merchant.post": "发给粉丝", "merchant.post_text": "告诉粉丝的新消息",
    "merchant.offer": "推送优惠", "merchant.offer_title": "标题",
    "merchant.offer_description": "说明", "merchant.offer_radius": "半径（米）",
    "merchant.offer_stock": "数量（空 = 不限）", "merchant.offer_hours": "有效时长（小时）",
    "merchant.offer_send": "推送", "merchant.offer_sent": "优惠已推送",
    "merchant.offer_held": "优惠需审核，通过后再推送",
    "merchant.redeem": "核销券码", "merchant.redeem_code": "券码", "merchant.redeem_send": "核销",
    "merchant.redeemed": "已核销：{code}", "merchant.funnel": "优惠转化漏斗",
    "merchant.stats": "{checkins} 次签到 · {visitors} 位访客 · {followers} 位粉丝",
    "merchant.no_offers": "还没有优惠。",
    "funnel.pushed": "推送", "funnel.claimed": "领取", "funnel.redeemed": "核销",
    "mod.queue": "审核队列", "mod.empty": "队列是空的。", "mod.reason": "理由",
    "mod.approve": "通过", "mod.hide": "隐藏", "mod.remove": "移除", "mod.restore": "恢复",
    "mod.select_all": "全选", "mod.bulk": "批量处理 {n} 条", "mod.done": "已处理 {n} 条",
    "mod.reports": "举报", "mod.flags": "标记", "mod.suspend_author": "封禁作者",
    "mod.words": "敏感词表", "mod.block": "屏蔽（直接拒绝）", "mod.review": "审核（先审后发）",
    "mod.one_per_line": "每行一个词", "mod.save": "保存", "mod.saved": "已保存",
    "mod.audit": "操作日志", "mod.users": "封禁或解封用户", "mod.user_id": "用户 ID",
    "mod.reason_required": "请填写理由", "mod.held_offer": "待审核的优惠",
    "common.error": "出错了", "common.loading": "加载中…", "common.save": "保存",
    "common.close": "关闭", "common.back": "返回", "common.ok": "好",
    "notif.like": "{user} 赞了你的微博", "notif.comment": "{user} 评论了你的微博",
    "notif.mention": "{user} 提到了你", "notif.follow": "{user} 关注了你",
    "notif.other": "新通知",
    "err.network": "无法连接服务器，请检查网络。",
    "err.too_far": "你离这家店太远了，走近一点再签到吧。",
    "err.checkin_too_soon": "一小时内你已经在这里签到过了，稍后再来。",
    "err.impossible_travel": "距离你上次签到的地点太远，不可能这么快到达。",
    "err.invalid_credentials": "用户名或密码错误。",
    "err.username_taken": "这个用户名已被占用。",
    "err.account_suspended": "该账号已被封禁。",
    "err.unauthorized": "请重新登录。",
    "err.forbidden": "你没有权限这样做。",
    "err.not_found": "没有找到。",
    "err.sold_out": "抱歉，优惠已被领完。",
    "err.too_many_live_offers": "该店已有 5 个进行中的优惠，请先结束一个。",
    "err.offer_ended": "优惠已结束。",
    "err.invalid_topic": "话题不能包含 / 或 \\。",
    "err.idempotency_in_progress": "上一个请求仍在发送，请稍后再试。",
    "err.offer_expired": "优惠已过期。",
    "err.already_redeemed": "这个券码已经核销过了。",
    "err.unknown_code": "没有这个券码。",
    "err.voucher_expired": "这张券已过期。",
    "err.content_rejected": "内容包含不允许的词语。",
    "err.cannot_follow_self": "不能关注自己。",
    "err.rate_limited": "请求太频繁，请稍后再试。",
    "err.payload_too_large": "内容太长了。",
    "err.invalid": "请检查输入的内容。",
    "err.unavailable": "服务繁忙，请稍后再试。",
    // manage (issue 16: profile, password, account deletion, store editing, offer list)
    "manage.back": "返回", "manage.save": "保存", "manage.saved": "已保存",
    "manage.profile": "编辑资料", "manage.display_name": "昵称", "manage.bio": "简介",
    "manage.password": "修改密码", "manage.old_password": "当前密码",
    "manage.new_password": "新密码（至少 8 位）", "manage.password_save": "修改密码",
    "manage.password_note": "你的其他设备将会退出登录。",
    "manage.password_saved": "密码已修改，其他设备已退出登录。",
    "manage.wrong_password": "密码不正确。",
    "manage.delete": "注销账号", "manage.delete_confirm": "永久注销我的账号",
    "manage.delete_what": "你的微博和评论将会消失，签到、位置、点赞和关注都会被清除。此操作无法撤销。",
    "manage.delete_kept": "你的用户名会被保留，任何人都不能冒用。",
    "manage.password_confirm": "输入密码以确认", "manage.deleted": "账号已注销。",
    "manage.store_edit": "编辑门店", "manage.pick_location": "选择位置",
    "manage.offers": "{name}的优惠", "manage.offers_link": "优惠",
    "manage.end": "立即结束", "manage.end_confirm": "现在结束「{title}」？已领取的券仍然有效。",
    "manage.ended": "优惠已结束", "manage.claimed": "已领", "manage.until": "截止",
    "manage.status.live": "进行中", "manage.status.pending_review": "审核中", "manage.status.ended": "已结束",
    "manage.status.expired": "已过期", "manage.status.sold_out": "已抢光",
    "err.invalid_transition": "这个操作已无法进行。", "err.invalid_media": "请选择你上传的图片。",
    "manage.offers_from_unfollowed": "接收未关注的附近商家的优惠",
  },
};

const KEY = "solomo.lang";

export function detectLanguage() {
  const saved = localStorage.getItem(KEY);
  if (saved && STRINGS[saved]) return saved;
  const langs = navigator.languages && navigator.languages.length ? navigator.languages : [navigator.language || "en"];
  return String(langs[0]).toLowerCase().startsWith("zh") ? "zh" : "en";
}

let current = detectLanguage();

export function lang() {
  return current;
}

export function setLanguage(code) {
  if (!STRINGS[code]) return;
  current = code;
  localStorage.setItem(KEY, code);
  document.documentElement.lang = code === "zh" ? "zh-CN" : "en";
}

export function has(key) {
  return Object.prototype.hasOwnProperty.call(STRINGS[current], key);
}

export function t(key, params = {}) {
  const table = STRINGS[current];
  const text = Object.prototype.hasOwnProperty.call(table, key) ? table[key] : (STRINGS.en[key] ?? key);
  return text.replace(/\{(\w+)\}/g, (m, name) => (name in params ? String(params[name]) : m));
}

export function languages() {
  return Object.keys(STRINGS);
}

// Exposed for the test that checks both tables have the same keys.
export const _tables = STRINGS;

export function formatTime(iso) {
  const when = new Date(iso);
  if (Number.isNaN(when.getTime())) return "";
  const seconds = Math.round((when.getTime() - Date.now()) / 1000);
  const rtf = new Intl.RelativeTimeFormat(current === "zh" ? "zh-CN" : "en", { numeric: "auto" });
  const abs = Math.abs(seconds);
  if (abs < 60) return rtf.format(seconds, "second");
  if (abs < 3600) return rtf.format(Math.round(seconds / 60), "minute");
  if (abs < 86400) return rtf.format(Math.round(seconds / 3600), "hour");
  if (abs < 86400 * 7) return rtf.format(Math.round(seconds / 86400), "day");
  return when.toLocaleDateString(current === "zh" ? "zh-CN" : "en");
}

export function formatDateTime(iso) {
  const when = new Date(iso);
  if (Number.isNaN(when.getTime())) return "";
  return when.toLocaleString(current === "zh" ? "zh-CN" : "en", { dateStyle: "medium", timeStyle: "short" });
}

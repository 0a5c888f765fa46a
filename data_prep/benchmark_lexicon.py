"""Domain vocabulary and text templates for the offline relevance benchmark.

Everything here is data: domains with categories of sibling entities, the
constraint values each domain can be asked about (audiences, attributes, price
bands), the phrases notes are written from, the keyword collisions, and which
entities, categories and query compositions are held out for the long-tail
split. Every text item is an ``(english, chinese)`` pair; the generator in
`data_prep.benchmark` picks one side by language.

Names must be distinct surface strings: the long-tail leakage check searches
training text for the full names of held-out entities, so an entity name must
not occur inside the generic phrases below, nor inside another entity's name.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

Pair = tuple[str, str]  # (en, zh)

LANGS = ("en", "zh")
INTENTS = ("how-to", "recommendation", "review", "place", "purchase", "comparison", "inspiration")
CONSTRAINT_TYPES = ("place", "price", "audience", "time", "attribute")


def pick(pair: Pair, lang: str) -> str:
    return pair[1] if lang == "zh" else pair[0]


# ---------------------------------------------------------------------------
# Domains. Each category lists sibling entities as (short id, en name, zh name).
# A category may override the domain's how-to verb, place verb or constraint
# types where the domain default reads wrong (e.g. gear vs. classes).
# Attributes are (query form, note says yes, note says no).
# ---------------------------------------------------------------------------

DOMAINS: dict[str, dict] = {
    "beauty": dict(
        name=("beauty", "美妆护肤"),
        verb=("use", "用"),
        place_verb=("try", "试"),
        constraints=("price", "audience", "time", "attribute"),
        categories={
            "sunscreen": (("sunscreen", "防晒"), [
                ("anessa", "Anessa Perfect UV sunscreen", "安热沙小金瓶防晒"),
                ("biore", "Biore UV Aqua Rich sunscreen", "碧柔水感防晒"),
                ("anthelios", "La Roche-Posay Anthelios sunscreen", "理肤泉大哥大防晒"),
                ("skinaqua", "Skin Aqua tone-up sunscreen", "曼秀雷敦新碧防晒"),
                ("shiseido_blue", "Shiseido blue sunscreen", "资生堂蓝胖子防晒"),
            ]),
            "lipstick": (("lip colour", "口红唇釉"), [
                ("mac_chili", "MAC Chili lipstick", "MAC小辣椒口红"),
                ("ysl_volupte", "YSL Rouge Volupte Shine", "YSL圆管口红"),
                ("dior_glow", "Dior Addict Lip Glow", "迪奥变色唇膏"),
                ("threece_tint", "3CE velvet lip tint", "3CE丝绒唇釉"),
                ("armani_maestro", "Armani Lip Maestro", "阿玛尼红管唇釉"),
            ]),
            "serum": (("serum", "精华"), [
                ("estee_anr", "Estee Lauder Advanced Night Repair", "雅诗兰黛小棕瓶"),
                ("genifique", "Lancome Genifique serum", "兰蔻小黑瓶"),
                ("skii_essence", "SK-II Facial Treatment Essence", "SK-II神仙水"),
                ("niacinamide", "The Ordinary niacinamide serum", "The Ordinary烟酰胺精华"),
                ("innisfree_greentea", "Innisfree green tea serum", "悦诗风吟绿茶精华"),
            ]),
            "foundation": (("foundation", "粉底液"), [
                ("double_wear", "Estee Lauder Double Wear foundation", "雅诗兰黛DW粉底液"),
                ("luminous_silk", "Armani Luminous Silk foundation", "阿玛尼权力粉底液"),
                ("nars_reflect", "NARS Light Reflecting foundation", "NARS超方瓶粉底液"),
                ("fit_me", "Maybelline Fit Me foundation", "美宝莲FitMe粉底液"),
            ]),
            "body_hair": (("hair and body care", "身体洗护"), [
                ("dove_wash", "Dove body wash", "多芬沐浴露"),
                ("coconut_mask", "coconut oil hair mask", "椰子油发膜"),
                ("creme_de_corps", "Kiehl's Creme de Corps lotion", "科颜氏身体乳"),
                ("olaplex", "Olaplex No.3 hair treatment", "Olaplex 3号发膜"),
                ("rose_mist", "rose water body mist", "玫瑰纯露喷雾"),
            ]),
        },
        price=((20, 30, 50, 80), (100, 200, 300, 500), ("${p}", "{p}元")),
        audiences=[("oily skin", "油皮"), ("dry skin", "干皮"), ("sensitive skin", "敏感肌"),
                   ("mature skin", "熟龄肌")],
        attributes=[
            (("matte", "哑光"), ("the finish is matte", "上脸是哑光效果"),
             ("the finish is dewy, not matte", "上脸是水光感，不哑光")),
            (("fragrance-free", "无香"), ("it is completely fragrance-free", "完全无香精"),
             ("it has a noticeable scent", "有比较明显的香味")),
            (("waterproof", "防水"), ("it is waterproof, it even survived a swim", "防水，游泳都不掉"),
             ("it is not waterproof at all", "完全不防水")),
            (("long-lasting", "持久"), ("it lasts the whole day", "一整天都很持久"),
             ("it fades within a couple of hours", "两三个小时就掉了")),
        ],
        howto=[("start on clean, moisturised skin", "先做好清洁和保湿"),
               ("take a pea-sized amount", "取黄豆大小的量"),
               ("warm it between your fingertips", "先在指腹上揉开"),
               ("pat it in instead of rubbing", "用按压代替涂抹"),
               ("build it up in thin layers", "少量多次叠加"),
               ("wait a minute before the next step", "等一分钟再进行下一步"),
               ("top up every few hours", "每隔几小时补一次")],
        rec=[("the travel-size version", "旅行装"), ("the limited gift set", "限定礼盒"),
             ("the refill pack", "替换装"), ("the mini trio", "迷你三件套"),
             ("the newest formula", "最新配方版")],
        pros=[("the texture is lightweight", "质地很轻薄"), ("it does not pill under makeup", "叠妆不搓泥"),
              ("my skin looks visibly smoother", "皮肤明显变细腻了"),
              ("the packaging is travel-friendly", "包装方便携带"), ("no breakouts so far", "目前没有闷痘")],
        cons=[("the pump gets messy", "按压头有点容易脏"), ("it runs out fast", "用得很快"),
              ("the shade range is limited", "色号选择不多"), ("it takes a while to absorb", "吸收需要一点时间")],
        aspects=[("texture", "质地"), ("staying power", "持妆度"), ("value for money", "性价比"),
                 ("packaging", "包装")],
        ideas=[("a soft glam look for date night", "约会的温柔妆"), ("a no-makeup makeup look", "伪素颜妆"),
               ("a shelfie corner on the vanity", "梳妆台的好看摆拍"),
               ("a flatlay with fresh flowers", "和鲜花一起的平铺拍照"),
               ("a head-to-toe peach look", "全脸蜜桃色系妆容"), ("a festival glitter look", "音乐节亮片妆")],
        shops=[("the brand counter on the mall's ground floor", "商场一楼的品牌专柜"),
               ("a beauty store with testers for everything", "一家所有产品都能试用的美妆集合店"),
               ("the flagship store downtown", "市中心的旗舰店"),
               ("the cosmetics corner of a department store", "百货公司的美妆区")],
    ),
    "travel": dict(
        name=("travel", "旅行"),
        verb=("prepare for", "玩"),
        place_verb=("try", "体验"),
        constraints=("place", "price", "audience", "time", "attribute"),
        categories={
            "snow": (("snow activity", "冰雪项目"), [
                ("downhill_ski", "downhill skiing", "双板滑雪"),
                ("snowboarding", "snowboarding", "单板滑雪"),
                ("snowmobile", "snowmobile tour", "雪地摩托"),
                ("aurora", "aurora chasing", "追极光"),
            ]),
            "water": (("water activity", "水上项目"), [
                ("scuba", "scuba diving", "水肺潜水"),
                ("snorkeling", "snorkeling", "浮潜"),
                ("surf_lessons", "surfing lessons", "冲浪课"),
                ("paddleboard", "stand-up paddleboarding", "桨板"),
            ]),
            "stays": (("special stay", "特色住宿"), [
                ("glamping", "glamping", "精致露营"),
                ("hot_spring", "hot spring stay", "温泉酒店"),
                ("homestay", "farm homestay", "乡村民宿"),
                ("treehouse", "treehouse stay", "树屋酒店"),
                ("capsule", "capsule hotel", "胶囊酒店"),
            ]),
            "city": (("city experience", "城市体验"), [
                ("citywalk", "citywalk", "城市漫步"),
                ("night_market", "night market tour", "逛夜市"),
                ("hanfu_shoot", "hanfu photoshoot", "汉服旅拍"),
                ("museum_hop", "museum hopping", "逛博物馆"),
            ]),
            "adventure": (("adventure activity", "极限项目"), [
                ("balloon", "hot air balloon ride", "热气球"),
                ("paragliding", "paragliding", "滑翔伞"),
                ("skydiving", "skydiving", "跳伞"),
                ("bungee", "bungee jumping", "蹦极"),
            ]),
        },
        price=((50, 100, 200, 400), (300, 500, 1000, 2000), ("${p} per person", "人均{p}元")),
        audiences=[("families with kids", "亲子家庭"), ("couples", "情侣"), ("solo travellers", "独自旅行的人"),
                   ("travellers with elderly parents", "带爸妈出行的人")],
        attributes=[
            (("uncrowded", "人少"), ("it was quiet with hardly any crowds", "人很少很清净"),
             ("it was packed with crowds", "人山人海，非常挤")),
            (("pet-friendly", "可带宠物"), ("pets are welcome", "可以带宠物"), ("no pets allowed", "不能带宠物")),
            (("no booking needed", "免预约"), ("no booking needed, you just walk in", "不用预约，直接去"),
             ("you must book days ahead", "必须提前好几天预约")),
        ],
        howto=[("check the weather forecast the day before", "前一天看好天气预报"),
               ("book the earliest slot", "订最早的场次"), ("pack a change of clothes", "带一套换洗衣服"),
               ("listen carefully to the safety briefing", "认真听安全讲解"),
               ("bring some cash for small vendors", "带点现金给小摊"),
               ("keep your phone in a dry pouch", "手机装进防水袋"),
               ("go with a licensed guide", "跟有资质的向导一起")],
        rec=[("the sunrise session", "日出场"), ("the half-day package", "半日套餐"),
             ("the small-group option", "小团"), ("the private tour", "私人定制团"),
             ("the weekday combo ticket", "工作日联票")],
        pros=[("the staff were super patient", "工作人员超有耐心"), ("the views were unreal", "风景美到不真实"),
              ("everything was well organised", "安排得井井有条"), ("the photos came out amazing", "出片率超高"),
              ("totally worth the early alarm", "早起完全值得")],
        cons=[("the queue was long", "排队时间长"), ("getting there is a hassle", "交通不太方便"),
              ("a few hidden fees", "有一些隐形消费"), ("the changing rooms were basic", "更衣室比较简陋")],
        aspects=[("views", "风景"), ("price", "价格"), ("thrill", "刺激程度"), ("convenience", "便利性")],
        ideas=[("a matching-outfit photo for two", "双人同款穿搭照"),
               ("a golden-hour silhouette shot", "黄昏剪影照"), ("a handheld-camera vlog", "手持相机拍vlog"),
               ("a travel journal page", "旅行手帐"), ("a drone shot from above", "航拍大片"),
               ("a polaroid wall of the trip", "拍立得照片墙")],
        shops=[("a local operator with great reviews", "一家口碑很好的本地机构"),
               ("the official visitor centre", "官方游客中心"),
               ("a small studio run by locals", "本地人开的小工作室"),
               ("a club right by the station", "车站旁边的俱乐部")],
    ),
    "food": dict(
        name=("food", "美食"),
        verb=("prepare", "吃"),
        place_verb=("get", "吃到"),
        constraints=("place", "price", "audience", "time", "attribute"),
        categories={
            "hotpot": (("hotpot", "火锅"), [
                ("tallow_hotpot", "beef tallow hotpot", "牛油火锅"),
                ("tomato_hotpot", "tomato hotpot", "番茄火锅"),
                ("mushroom_hotpot", "mushroom hotpot", "菌汤火锅"),
                ("chaoshan_hotpot", "Chaoshan beef hotpot", "潮汕牛肉火锅"),
            ]),
            "dessert": (("dessert", "甜品"), [
                ("tiramisu", "tiramisu", "提拉米苏"),
                ("basque_cheesecake", "Basque cheesecake", "巴斯克芝士蛋糕"),
                ("mango_sticky_rice", "mango sticky rice", "芒果糯米饭"),
                ("egg_tart", "Portuguese egg tart", "葡式蛋挞"),
                ("dove_chocolate", "Dove chocolate", "德芙巧克力"),
            ]),
            "drinks": (("drink", "饮品"), [
                ("matcha_latte", "matcha latte", "抹茶拿铁"),
                ("longjing", "Longjing green tea", "龙井绿茶"),
                ("coconut_water", "coconut water", "椰子水"),
                ("cold_brew", "cold brew coffee", "冷萃咖啡"),
                ("milk_tea", "bubble milk tea", "珍珠奶茶"),
            ]),
            "fruit": (("fruit", "水果"), [
                ("fuji_apple", "Fuji apple", "富士苹果"),
                ("blackberries", "fresh blackberries", "新鲜黑莓"),
                ("yantai_cherries", "Yantai cherries", "烟台大樱桃"),
                ("durian", "Musang King durian", "猫山王榴莲"),
                ("lychee", "Feizixiao lychee", "妃子笑荔枝"),
            ]),
            "staples": (("breakfast staple", "早餐主食"), [
                ("millet_porridge", "millet porridge", "小米粥"),
                ("jianbing", "jianbing crepe", "煎饼果子"),
                ("xiaolongbao", "xiaolongbao", "小笼包"),
                ("beef_noodles", "Lanzhou beef noodles", "兰州牛肉面"),
            ]),
        },
        price=((10, 20, 40, 80), (50, 100, 150, 300), ("${p} per person", "人均{p}元")),
        audiences=[("kids", "小朋友"), ("people on a diet", "减脂期的人"), ("students", "学生党"),
                   ("office workers", "上班族")],
        attributes=[
            (("spicy", "辣"), ("it is properly spicy", "够辣，很过瘾"),
             ("it is totally mild, zero heat", "一点都不辣")),
            (("low-sugar", "低糖"), ("it is low in sugar", "糖分很低"),
             ("it is very sweet and sugary", "非常甜，糖分很高")),
            (("freshly made", "现做"), ("everything is made fresh to order", "全部现点现做"),
             ("it is pre-made and reheated", "是预制加热的")),
        ],
        howto=[("pick the freshest ingredients you can find", "挑最新鲜的食材"),
               ("prep everything before you start", "开始前把材料都备好"),
               ("keep the heat at medium", "火候保持中火"), ("taste and adjust as you go", "边做边尝随时调整"),
               ("let it rest for ten minutes", "静置十分钟"),
               ("serve it right away while it is fresh", "趁新鲜马上吃"),
               ("pair it with something light", "搭配点清爽的")],
        rec=[("the classic original", "经典原味"), ("the seasonal special", "季节限定款"),
             ("the sharing platter", "分享拼盘"), ("the chef's signature", "主厨招牌"),
             ("the half portion", "小份装")],
        pros=[("the flavour is rich but balanced", "味道浓郁又平衡"), ("the portions are generous", "分量很足"),
              ("the ingredients taste really fresh", "食材很新鲜"), ("the service was quick", "上菜很快"),
              ("it tastes like the real deal", "味道很正宗")],
        cons=[("there is always a wait", "总是要排队"), ("a little too salty for me", "对我来说有点咸"),
              ("the seating is cramped", "座位有点挤"), ("it sells out early", "很早就卖完了")],
        aspects=[("taste", "口味"), ("price", "价格"), ("portion size", "分量"), ("freshness", "新鲜度")],
        ideas=[("a picnic spread on a gingham cloth", "格子餐布上的野餐摆盘"),
               ("a cosy dinner table for friends", "朋友聚餐的温馨餐桌"), ("a bento box layout", "便当盒摆盘"),
               ("an overhead shot in warm light", "暖光俯拍"), ("a mini tasting board", "迷你品尝拼盘"),
               ("a breakfast tray in bed", "床上早餐托盘")],
        shops=[("a hole-in-the-wall place run by an old couple", "一对老夫妻开的苍蝇小馆"),
               ("a stall in the wet market", "菜市场里的小摊"),
               ("a busy chain branch near the mall", "商场附近一家很火的连锁店"),
               ("a tiny café with only six seats", "只有六个座位的小店")],
    ),
    "fashion": dict(
        name=("fashion", "穿搭"),
        verb=("style", "搭"),
        place_verb=("buy", "买"),
        constraints=("price", "audience", "time", "attribute"),
        categories={
            "bags": (("bag", "包包"), [
                ("coach_tabby", "Coach Tabby bag", "蔻驰Tabby包"),
                ("le_pliage", "Longchamp Le Pliage tote", "珑骧饺子包"),
                ("ck_shoulder", "Charles & Keith shoulder bag", "小CK腋下包"),
                ("canvas_tote", "canvas tote bag", "帆布托特包"),
                ("polene", "Polene Numero Un bag", "Polene一号包"),
            ]),
            "outerwear": (("outerwear", "外套"), [
                ("mango_blazer", "Mango linen blazer", "Mango亚麻西装外套"),
                ("trench", "trench coat", "风衣"),
                ("down_jacket", "down jacket", "羽绒服"),
                ("denim_jacket", "denim jacket", "牛仔外套"),
                ("cardigan", "knit cardigan", "针织开衫"),
            ]),
            "shoes": (("shoes", "鞋子"), [
                ("white_sneakers", "white sneakers", "小白鞋"),
                ("mary_janes", "Mary Jane shoes", "玛丽珍鞋"),
                ("chelsea_boots", "Chelsea boots", "切尔西靴"),
                ("loafers", "penny loafers", "乐福鞋"),
                ("boston_clogs", "Birkenstock Boston clogs", "勃肯Boston拖鞋"),
            ]),
            "bottoms": (("bottoms", "下装"), [
                ("wide_jeans", "wide-leg jeans", "阔腿牛仔裤"),
                ("pleated_skirt", "pleated skirt", "百褶裙"),
                ("cargo_pants", "cargo pants", "工装裤"),
                ("straight_trousers", "straight-leg trousers", "直筒西裤"),
            ]),
            "accessories": (("accessory", "配饰"), [
                ("silk_scarf", "silk scarf", "丝巾"),
                ("pearl_earrings", "pearl earrings", "珍珠耳环"),
                ("baseball_cap", "baseball cap", "棒球帽"),
                ("claw_clip", "hair claw clip", "抓夹"),
            ]),
        },
        price=((30, 60, 100, 200), (200, 400, 800, 1500), ("${p}", "{p}元")),
        audiences=[("petite girls", "小个子女生"), ("tall girls", "高个子女生"), ("curvy girls", "微胖女生"),
                   ("men", "男生")],
        attributes=[
            (("oversized", "宽松版"), ("it has a relaxed oversized fit", "是宽松的oversize版型"),
             ("it is a slim, fitted cut", "是修身版型，不宽松")),
            (("machine-washable", "可机洗"), ("it is machine-washable", "可以直接机洗"),
             ("it is dry-clean only", "只能干洗")),
            (("wrinkle-free", "抗皱"), ("it does not wrinkle at all", "完全不起皱"),
             ("it wrinkles easily", "很容易起皱")),
        ],
        howto=[("start with one neutral base piece", "先选一件基础色单品打底"),
               ("tuck in the front to show your waist", "前面塞一下露出腰线"),
               ("roll the sleeves once", "袖子挽一折"), ("add one statement accessory", "加一件亮点配饰"),
               ("keep the palette to three colours", "全身颜色不超过三种"),
               ("balance a loose top with a fitted bottom", "上松下紧平衡比例"),
               ("finish with clean shoes", "最后配一双干净的鞋")],
        rec=[("the classic black", "经典黑色"), ("the beige colourway", "奶茶色"), ("the mini size", "迷你号"),
             ("the seasonal print", "限定印花"), ("the basic version", "基础款")],
        pros=[("the fabric feels premium", "面料很高级"), ("it goes with everything", "百搭"),
              ("the cut is flattering", "版型很显身材"), ("it holds up well after washes", "洗了很多次也不变形"),
              ("comfortable all day", "穿一整天都舒服")],
        cons=[("the sizing runs small", "尺码偏小"), ("the colour shows stains", "颜色有点显脏"),
              ("it creases at the elbows", "手肘处容易有折痕"), ("the pockets are tiny", "口袋太小")],
        aspects=[("fit", "版型"), ("fabric", "面料"), ("versatility", "百搭程度"), ("price", "价格")],
        ideas=[("a French-girl weekend look", "法式周末穿搭"), ("an office-to-dinner outfit", "通勤到晚餐的一衣两穿"),
               ("an all-beige outfit", "全身奶茶色穿搭"), ("a sporty street look", "运动街头风"),
               ("a date-day outfit in soft colours", "柔和色系约会穿搭"),
               ("a layered look with a vest", "叠穿马甲的层次感穿搭")],
        shops=[("the flagship store on the main shopping street", "步行街上的旗舰店"),
               ("a vintage shop on a side street", "小巷里的古着店"), ("a designer showroom", "设计师买手店"),
               ("the outlet mall out of town", "郊区的奥特莱斯")],
    ),
    "fitness": dict(
        name=("fitness", "健身"),
        verb=("do", "练"),
        place_verb=("do", "练"),
        constraints=("place", "price", "audience", "time", "attribute"),
        categories={
            "home_workout": (("home workout", "居家训练"), [
                ("pamela", "Pamela Reif workout", "帕梅拉跟练"),
                ("hiit", "HIIT circuit", "HIIT燃脂"),
                ("jump_rope", "jump rope workout", "跳绳训练"),
                ("tabata", "Tabata training", "Tabata训练"),
            ]),
            "mind_body": (("mind-body class", "身心训练"), [
                ("pilates", "Pilates", "普拉提"),
                ("yin_yoga", "yin yoga", "阴瑜伽"),
                ("tai_chi", "tai chi", "太极拳"),
                ("barre", "barre class", "芭蕾把杆"),
            ]),
            "strength": (("strength exercise", "力量训练"), [
                ("deadlift", "deadlift", "硬拉"),
                ("barbell_squat", "barbell squat", "杠铃深蹲"),
                ("bench_press", "bench press", "卧推"),
                ("kettlebell_swing", "kettlebell swing", "壶铃摆荡"),
            ]),
            "cardio": (("cardio", "有氧运动"), [
                ("marathon", "marathon training", "马拉松训练"),
                ("spinning", "spinning class", "动感单车"),
                ("freestyle", "freestyle swimming", "自由泳"),
                ("running_coach", "running coach", "跑步教练"),
            ]),
            "recovery": (("recovery gear", "恢复装备"), [
                ("foam_roller", "foam roller", "泡沫轴"),
                ("whey", "whey protein powder", "乳清蛋白粉"),
                ("massage_gun", "massage gun", "筋膜枪"),
                ("knee_sleeves", "knee sleeves", "护膝"),
            ], dict(verb=("use", "用"), place_verb=("buy", "买"),
                    constraints=("price", "audience", "attribute"))),
        },
        price=((10, 20, 50, 100), (50, 100, 300, 600), ("${p}", "{p}元")),
        audiences=[("beginners", "健身小白"), ("advanced lifters", "进阶玩家"), ("seniors", "中老年人"),
                   ("postpartum moms", "产后妈妈")],
        attributes=[
            (("no equipment", "无器械"), ("it needs no equipment at all", "完全不需要器械"),
             ("it needs a full set of gym equipment", "需要整套器械")),
            (("low-impact", "低冲击"), ("it is low-impact and easy on the knees", "低冲击，不伤膝盖"),
             ("there is a lot of jumping, hard on the knees", "跳跃很多，膝盖压力大")),
            (("under 20 minutes", "20分钟以内"), ("a session takes about 15 minutes", "一次大概15分钟"),
             ("a session takes a full hour", "一次要一个小时")),
        ],
        howto=[("warm up for five minutes first", "先热身五分钟"), ("keep your core tight", "全程收紧核心"),
               ("breathe out on the effort", "发力时呼气"),
               ("start with a lighter load or fewer reps", "先从轻重量或少次数开始"),
               ("film yourself to check your form", "录视频检查动作"),
               ("rest a day between hard sessions", "高强度训练之间休息一天"),
               ("stretch for ten minutes after", "结束后拉伸十分钟")],
        rec=[("the 4-week starter plan", "四周入门计划"), ("the morning routine", "晨练版"),
             ("the short version for busy days", "忙碌日的精简版"), ("the partner version", "双人版"),
             ("the progression plan", "进阶计划")],
        pros=[("I felt results within two weeks", "两周就感觉到变化"), ("easy to stick with", "很容易坚持"),
              ("my posture improved", "体态变好了"), ("a great energy boost", "练完精神很好"),
              ("the instructions are clear", "讲解很清楚")],
        cons=[("sore for days at first", "刚开始会酸好几天"), ("a bit repetitive", "有点重复"),
              ("it needs a lot of space", "需要比较大的空间"),
              ("hard to keep good form when tired", "累了动作容易变形")],
        aspects=[("calorie burn", "燃脂效果"), ("difficulty", "难度"), ("cost", "花费"), ("fun factor", "趣味性")],
        ideas=[("a workout corner by the window", "窗边的运动角落"), ("a matching gym set", "同色系运动套装"),
               ("a progress photo collage", "对比照拼图"), ("a habit tracker on the wall", "墙上的打卡表"),
               ("a sunrise session on the rooftop", "天台日出训练"),
               ("a playlist cover for workouts", "运动歌单封面")],
        shops=[("a boutique studio near the park", "公园旁边的精品工作室"),
               ("a 24-hour gym by the metro", "地铁口的24小时健身房"),
               ("a community sports centre", "社区体育中心"),
               ("a rooftop studio with big windows", "有落地窗的顶楼工作室")],
    ),
    "electronics": dict(
        name=("electronics", "数码"),
        verb=("set up", "用"),
        place_verb=("try", "体验"),
        constraints=("price", "audience", "attribute"),
        categories={
            "phones": (("phone", "手机"), [
                ("iphone15pro", "iPhone 15 Pro", "iPhone 15 Pro"),
                ("galaxy_s24", "Samsung Galaxy S24", "三星Galaxy S24"),
                ("xiaomi14", "Xiaomi 14", "小米14"),
                ("mate60", "Huawei Mate 60", "华为Mate 60"),
                ("bb_key2", "BlackBerry Key2", "黑莓Key2手机"),
            ]),
            "wearables": (("wearable", "智能穿戴"), [
                ("apple_watch", "Apple Watch Series 9", "苹果手表S9"),
                ("mi_band", "Xiaomi Smart Band 8", "小米手环8"),
                ("forerunner", "Garmin Forerunner 265", "佳明Forerunner 265"),
                ("watch_gt4", "Huawei Watch GT4", "华为Watch GT4"),
            ]),
            "audio": (("headphones", "耳机"), [
                ("sony_xm5", "Sony WH-1000XM5", "索尼WH-1000XM5"),
                ("airpods_pro2", "AirPods Pro 2", "AirPods Pro 2"),
                ("bose_qc_ultra", "Bose QuietComfort Ultra", "Bose QC Ultra耳机"),
                ("marshall_major", "Marshall Major IV", "马歇尔Major IV"),
            ]),
            "peripherals": (("desk peripheral", "电脑外设"), [
                ("mx_master", "Logitech MX Master 3S mouse", "罗技MX Master 3S鼠标"),
                ("cherry_keyboard", "Cherry MX keyboard", "樱桃机械键盘"),
                ("keychron_k2", "Keychron K2 keyboard", "Keychron K2键盘"),
                ("screenbar", "BenQ ScreenBar monitor light", "明基屏幕挂灯"),
            ]),
            "gaming": (("game console", "游戏机"), [
                ("nintendo_switch", "Nintendo Switch", "任天堂Switch"),
                ("ps5", "PlayStation 5", "PS5游戏机"),
                ("steam_deck", "Steam Deck", "Steam Deck掌机"),
                ("quest3", "Meta Quest 3", "Meta Quest 3头显"),
            ]),
        },
        price=((200, 400, 800, 1200), (1000, 2000, 4000, 8000), ("${p}", "{p}元")),
        audiences=[("students", "学生党"), ("gamers", "游戏玩家"), ("photographers", "摄影爱好者"),
                   ("seniors", "长辈")],
        attributes=[
            (("noise-cancelling", "降噪"), ("the noise cancelling is excellent", "降噪效果很好"),
             ("there is no noise cancelling", "没有降噪功能")),
            (("lightweight", "轻便"), ("it is really light to carry", "拿着非常轻"),
             ("it is heavy, you feel it in the bag", "很重，放包里很压")),
            (("long battery life", "续航长"), ("the battery easily lasts two days", "续航轻松两天"),
             ("the battery barely lasts a day", "续航撑不过一天")),
        ],
        howto=[("update the firmware first", "先升级固件"), ("turn off the features you do not need", "关掉用不到的功能"),
               ("set up the shortcuts in settings", "在设置里配置快捷操作"),
               ("pair it through the companion app", "用配套App完成配对"),
               ("calibrate it once after setup", "设置好后校准一次"),
               ("back up your data before moving over", "换机前先备份数据"),
               ("use the original charger", "用原装充电器")],
        rec=[("the base storage model", "基础存储版"), ("the upgraded version", "升级版"),
             ("the bundle with a case", "带保护壳的套装"), ("the refurbished unit", "官翻机"),
             ("the last-gen model on sale", "打折的上一代")],
        pros=[("the screen is gorgeous", "屏幕素质很好"), ("setup took five minutes", "五分钟就设置好了"),
              ("the build feels solid", "做工很扎实"), ("the software is smooth", "系统很流畅"),
              ("the sound is crisp", "音质很清晰")],
        cons=[("it gets warm under load", "高负载会发热"), ("the charger is sold separately", "充电器要单独买"),
              ("the app is clunky", "配套App不太好用"), ("accessories are pricey", "配件很贵")],
        aspects=[("performance", "性能"), ("battery", "续航"), ("price", "价格"), ("build quality", "做工")],
        ideas=[("a minimalist desk setup", "极简桌面布置"), ("a cosy gaming corner", "温馨游戏角"),
               ("a pastel tech flatlay", "马卡龙色数码平铺"), ("a cable-free nightstand", "无线床头柜布置"),
               ("a travel tech kit", "出差数码收纳包"), ("a wallpaper and widget theme", "壁纸和小组件主题")],
        shops=[("the brand experience store in the mall", "商场里的品牌体验店"),
               ("the electronics market", "电子市场"),
               ("an authorised reseller near the station", "车站附近的授权经销商"),
               ("a second-hand gadget shop", "二手数码店")],
    ),
    "home": dict(
        name=("home", "家居"),
        verb=("use", "用"),
        place_verb=("see", "看"),
        constraints=("price", "audience", "attribute"),
        categories={
            "cleaning": (("cleaning tool", "清洁工具"), [
                ("dyson_v12", "Dyson V12 vacuum", "戴森V12吸尘器"),
                ("robot_vacuum", "robot vacuum", "扫地机器人"),
                ("steam_mop", "steam mop", "蒸汽拖把"),
                ("rust_remover", "rust remover spray", "除锈喷雾"),
            ]),
            "kitchen": (("kitchen appliance", "厨房电器"), [
                ("air_fryer", "air fryer", "空气炸锅"),
                ("espresso_machine", "espresso machine", "意式咖啡机"),
                ("rice_cooker", "rice cooker", "电饭煲"),
                ("soymilk_maker", "soymilk maker", "豆浆机"),
            ]),
            "furniture": (("furniture", "家具"), [
                ("sofa_bed", "sofa bed", "沙发床"),
                ("standing_desk", "standing desk", "升降桌"),
                ("rattan_chair", "rattan armchair", "藤编椅"),
                ("floor_lamp", "floor lamp", "落地灯"),
            ]),
            "smart_home": (("smart home device", "智能家居"), [
                ("smart_switch", "smart light switch", "智能开关"),
                ("door_lock", "smart door lock", "智能门锁"),
                ("smart_speaker", "smart speaker", "智能音箱"),
                ("curtain_motor", "smart curtain motor", "智能窗帘电机"),
            ]),
            "textiles": (("bedding and decor", "家纺软装"), [
                ("blackout_curtains", "blackout curtains", "遮光窗帘"),
                ("memory_pillow", "memory foam pillow", "记忆棉枕头"),
                ("linen_bedding", "linen bedding set", "亚麻四件套"),
                ("aroma_diffuser", "aroma diffuser", "香薰机"),
            ]),
        },
        price=((30, 80, 150, 300), (200, 500, 1000, 2000), ("${p}", "{p}元")),
        audiences=[("renters", "租房党"), ("families with kids", "有娃家庭"), ("pet owners", "养宠家庭"),
                   ("newlyweds", "新婚夫妻")],
        attributes=[
            (("quiet", "静音"), ("it is whisper-quiet", "非常安静，几乎没声音"), ("it is pretty loud", "声音挺大的")),
            (("space-saving", "省空间"), ("it folds away and saves space", "可以收起来，很省空间"),
             ("it takes up a lot of space", "很占地方")),
            (("easy to clean", "好清洁"), ("it wipes clean in seconds", "擦一下就干净"),
             ("it is a pain to clean", "清洁起来很麻烦")),
        ],
        howto=[("measure your space before anything else", "先量好尺寸"),
               ("read the manual once, seriously", "认真看一遍说明书"),
               ("run it empty the first time", "第一次先空机运行"), ("clean the filter every week", "每周清洗滤网"),
               ("keep it out of direct sunlight", "避免阳光直射"), ("use the app schedule", "用App设置定时"),
               ("descale it every month", "每个月除一次垢")],
        rec=[("the entry model", "入门款"), ("the pro version", "Pro版"), ("the set with extra parts", "带配件的套装"),
             ("the compact size", "小尺寸款"), ("the cream colour", "奶油白配色")],
        pros=[("chores go so much faster", "家务效率高了很多"), ("it looks great in the room", "放在家里很好看"),
              ("sturdy and well made", "结实耐用"), ("the app is intuitive", "App很好上手"),
              ("worth every cent", "每一分钱都值")],
        cons=[("installation took a while", "安装花了点时间"), ("replacement parts are pricey", "耗材有点贵"),
              ("the cord is short", "线有点短"), ("it shows dust easily", "容易显灰")],
        aspects=[("noise", "噪音"), ("ease of use", "易用性"), ("price", "价格"), ("durability", "耐用程度")],
        ideas=[("a Japandi living room", "日式侘寂风客厅"), ("a cream-toned bedroom", "奶油风卧室"),
               ("a tiny balcony café corner", "阳台小咖啡角"), ("a rental-friendly makeover", "出租屋改造"),
               ("a reading nook full of greenery", "满是绿植的阅读角"), ("a warm lighting plan", "温馨的灯光布置")],
        shops=[("the IKEA showroom", "宜家展厅"), ("a furniture mall on the ring road", "环路边的家居城"),
               ("a design store with display rooms", "有样板间的设计师家居店"),
               ("the brand's pop-up store", "品牌快闪店")],
    ),
    "parenting": dict(
        name=("parenting", "母婴育儿"),
        verb=("use", "用"),
        place_verb=("try", "试"),
        constraints=("price", "audience", "time", "attribute"),
        categories={
            "strollers": (("stroller and carrier", "出行装备"), [
                ("babyzen_yoyo", "Babyzen YOYO stroller", "Babyzen YOYO婴儿车"),
                ("bugaboo_fox", "Bugaboo Fox stroller", "博格步Fox婴儿车"),
                ("baby_carrier", "baby carrier", "婴儿背带"),
                ("car_seat", "child car seat", "儿童安全座椅"),
            ]),
            "feeding": (("feeding gear", "喂养用品"), [
                ("hegen_bottle", "Hegen baby bottle", "Hegen奶瓶"),
                ("comotomo", "Comotomo bottle", "可么多么奶瓶"),
                ("food_maker", "baby food maker", "辅食机"),
                ("breast_pump", "breast pump", "吸奶器"),
            ]),
            "diapers": (("diaper", "纸尿裤"), [
                ("pampers", "Pampers diapers", "帮宝适纸尿裤"),
                ("merries", "Merries diapers", "花王纸尿裤"),
                ("moony", "Moony diapers", "尤妮佳纸尿裤"),
                ("huggies", "Huggies diapers", "好奇纸尿裤"),
            ]),
            "toys": (("toy", "早教玩具"), [
                ("busy_board", "Montessori busy board", "蒙氏忙碌板"),
                ("duplo", "LEGO Duplo", "乐高得宝"),
                ("picture_books", "bilingual picture books", "双语绘本"),
                ("magnetic_tiles", "magnetic tiles", "磁力片"),
            ]),
            "sleep_care": (("sleep and care", "睡眠护理"), [
                ("sleeping_bag", "baby sleeping bag", "婴儿睡袋"),
                ("white_noise", "white noise machine", "白噪音机"),
                ("baby_monitor", "baby monitor", "婴儿监视器"),
                ("bath_tub", "baby bath tub", "婴儿浴盆"),
            ]),
        },
        price=((20, 50, 100, 300), (100, 300, 800, 2000), ("${p}", "{p}元")),
        audiences=[("newborns", "新生儿"), ("toddlers", "1-3岁宝宝"), ("preschoolers", "学龄前儿童"),
                   ("school-age kids", "小学生")],
        attributes=[
            (("portable", "便携"), ("it folds small and travels easily", "折叠后很小，出门方便"),
             ("it is bulky and hard to carry around", "很笨重，不方便带出门")),
            (("easy to wash", "好清洗"), ("it is easy to wash", "很好清洗"),
             ("it has lots of hard-to-clean corners", "死角很多不好洗")),
            (("breathable", "透气"), ("it is very breathable", "很透气"),
             ("it gets stuffy and hot", "很闷热不透气")),
        ],
        howto=[("read the age guidance first", "先看适用月龄"),
               ("test it yourself before the baby does", "给宝宝用之前自己先试一下"),
               ("start at a calm, well-fed moment", "在宝宝吃饱心情好的时候开始"),
               ("sterilise all parts before first use", "第一次用前所有配件消毒"),
               ("keep a spare in the changing bag", "妈咪包里备一个"),
               ("follow a consistent routine", "保持固定的作息"),
               ("check the straps every time", "每次都检查一下卡扣")],
        rec=[("the newborn starter set", "新生儿入门套装"), ("the travel edition", "出行版"),
             ("the twin pack", "两件装"), ("the gift box", "礼盒装"), ("the trial size", "试用装")],
        pros=[("the baby took to it right away", "宝宝很快就接受了"), ("it saves me so much time", "帮我省了很多时间"),
              ("it feels safe and sturdy", "用着很安心很结实"), ("easy to use one-handed", "单手就能操作"),
              ("the material is soft", "材质很柔软")],
        cons=[("a bit heavy", "有点重"), ("pricey for how fast they outgrow it", "宝宝长得快，用不了多久有点贵"),
              ("the instructions are confusing", "说明书看不太懂"), ("few colour options", "颜色选择少")],
        aspects=[("safety", "安全性"), ("comfort", "舒适度"), ("price", "价格"), ("convenience", "便利性")],
        ideas=[("a gender-neutral nursery", "中性风婴儿房"), ("a monthly milestone photo", "月龄纪念照"),
               ("a cosy reading corner for little ones", "宝宝的温馨阅读角"), ("a DIY sensory bin", "自制感官游戏盒"),
               ("a first-birthday table", "周岁宴布置"), ("a tidy toy shelf", "整洁的玩具收纳架")],
        shops=[("a mother-and-baby store in the mall", "商场里的母婴店"),
               ("the brand's experience corner", "品牌体验区"), ("a baby expo", "母婴展"),
               ("a toy library in the community centre", "社区中心的玩具图书馆")],
    ),
    "study": dict(
        name=("study", "学习"),
        verb=("learn", "学"),
        place_verb=("study", "学"),
        constraints=("place", "price", "audience", "time", "attribute"),
        categories={
            "language_tests": (("language test", "语言考试"), [
                ("ielts", "IELTS", "雅思"),
                ("toefl", "TOEFL", "托福"),
                ("jlpt_n2", "JLPT N2", "日语N2"),
                ("duolingo", "Duolingo", "多邻国"),
            ]),
            "programming": (("programming skill", "编程技能"), [
                ("python_lang", "Python programming", "Python编程"),
                ("rust_lang", "Rust programming", "Rust编程"),
                ("java_lang", "Java programming", "Java编程"),
                ("excel", "Excel formulas", "Excel函数"),
                ("sql", "SQL basics", "SQL基础"),
            ]),
            "exams": (("qualification exam", "升学考证"), [
                ("kaoyan", "postgraduate entrance exam", "考研"),
                ("civil_service", "civil service exam", "考公"),
                ("cpa", "CPA exam", "CPA考试"),
                ("teacher_cert", "teacher qualification exam", "教资考试"),
            ]),
            "methods": (("study method", "学习方法"), [
                ("pomodoro", "Pomodoro technique", "番茄工作法"),
                ("notion", "Notion study templates", "Notion学习模板"),
                ("goodnotes", "GoodNotes", "GoodNotes"),
                ("anki", "Anki flashcards", "Anki记忆卡"),
                ("mind_map", "mind mapping", "思维导图"),
            ]),
        },
        price=((10, 30, 100, 300), (50, 200, 500, 2000), ("${p}", "{p}元")),
        audiences=[("high school students", "高中生"), ("college students", "大学生"),
                   ("working adults", "在职人士"), ("primary schoolers", "小学生")],
        attributes=[
            (("free", "免费"), ("all the resources are free", "资料全部免费"),
             ("you need a paid membership", "需要付费会员")),
            (("with answer keys", "带答案解析"), ("it comes with full answer keys", "有完整的答案解析"),
             ("there are no answer keys", "没有答案解析")),
            (("self-paced", "自学"), ("you can go at your own pace", "可以按自己的节奏自学"),
             ("it follows a fixed class schedule", "要跟固定课表上课")),
        ],
        howto=[("set a weekly goal you can actually hit", "定一个能完成的周目标"),
               ("study in 25-minute blocks", "每次学25分钟"),
               ("review yesterday's notes first", "先复习前一天的笔记"),
               ("do past papers against the clock", "限时刷真题"),
               ("explain it out loud to yourself", "自己讲一遍给自己听"),
               ("keep a mistakes notebook", "整理错题本"), ("sleep on it and review again", "睡一觉再复习一次")],
        rec=[("the official guide book", "官方指南"), ("the free video course", "免费视频课"),
             ("the practice question bank", "刷题题库"), ("the study group", "学习小组"),
             ("the vocabulary app", "背单词App")],
        pros=[("my score went up fast", "分数提升很快"), ("the explanations are super clear", "讲解非常清楚"),
              ("it keeps me motivated", "很能激励我坚持"), ("it fits around a full-time job", "上班也能兼顾"),
              ("well structured", "结构很清晰")],
        cons=[("a steep learning curve", "入门有点难"), ("a bit dry at times", "有时候有点枯燥"),
              ("it needs a lot of self-discipline", "很需要自律"), ("some material is outdated", "部分资料有点旧")],
        aspects=[("difficulty", "难度"), ("time needed", "所需时间"), ("cost", "花费"), ("career value", "就业价值")],
        ideas=[("a clean study desk setup", "干净的学习桌布置"), ("a colour-coded note layout", "彩色分类笔记排版"),
               ("a weekly planner spread", "周计划手帐"), ("a library study vlog", "图书馆学习vlog"),
               ("a cosy night study corner", "温馨的夜读角"), ("a wall of sticky-note goals", "便利贴目标墙")],
        shops=[("a quiet self-study room", "安静的付费自习室"), ("the city library's top floor", "市图书馆顶楼"),
               ("a training centre by the university", "大学旁边的培训机构"),
               ("a café that welcomes students", "欢迎学生的咖啡馆")],
    ),
    "pets": dict(
        name=("pets", "萌宠"),
        verb=("raise", "养"),
        place_verb=("meet", "撸"),
        constraints=("place", "price", "audience", "attribute"),
        categories={
            "dogs": (("dog breed", "狗狗品种"), [
                ("corgi", "corgi", "柯基"),
                ("golden_retriever", "golden retriever", "金毛寻回犬"),
                ("shiba", "shiba inu", "柴犬"),
                ("border_collie", "border collie", "边境牧羊犬"),
                ("toy_poodle", "toy poodle", "泰迪犬"),
            ]),
            "cats": (("cat breed", "猫咪品种"), [
                ("ragdoll", "ragdoll cat", "布偶猫"),
                ("british_shorthair", "British shorthair", "英国短毛猫"),
                ("maine_coon", "Maine coon", "缅因猫"),
                ("orange_tabby", "orange tabby cat", "橘猫"),
            ]),
            "small_pets": (("small pet", "小宠"), [
                ("hamster", "hamster", "仓鼠"),
                ("pet_mouse", "pet mouse", "宠物鼠"),
                ("lop_rabbit", "Holland lop rabbit", "垂耳兔"),
                ("guinea_pig", "guinea pig", "豚鼠"),
            ]),
            "reptiles_fish": (("reptile or fish", "爬宠水族"), [
                ("ball_python", "ball python", "球蟒"),
                ("leopard_gecko", "leopard gecko", "豹纹守宫"),
                ("betta", "betta fish", "斗鱼"),
                ("goldfish", "goldfish", "金鱼"),
            ]),
        },
        price=((20, 50, 100, 300), (100, 300, 800, 2000), ("${p}", "{p}元")),
        audiences=[("first-time owners", "新手铲屎官"), ("busy office workers", "忙碌的上班族"),
                   ("families with young kids", "有小孩的家庭"), ("people in small flats", "住小户型的人")],
        attributes=[
            (("low-maintenance", "好养"), ("it is really low-maintenance", "非常好养，省心"),
             ("it needs a lot of daily care", "每天都要花很多精力照顾")),
            (("quiet", "安静"), ("it is calm and quiet", "性格安静不吵"), ("it is pretty noisy", "比较吵")),
            (("allergy-friendly", "不易过敏"), ("it is gentle on allergies", "对过敏体质比较友好"),
             ("it sheds a lot, rough for allergies", "掉毛很多，过敏体质慎重")),
        ],
        howto=[("set up a quiet corner before bringing them home", "接回家之前先布置好安静的角落"),
               ("stick to a feeding schedule", "定时定量喂食"), ("reward good behaviour right away", "做对了马上奖励"),
               ("book a vet check in the first week", "第一周就去做个体检"),
               ("switch food slowly", "换粮要循序渐进"), ("keep the habitat clean", "保持环境干净"),
               ("give them daily play time", "每天留出陪玩时间")],
        rec=[("the starter supply kit", "新手用品套装"), ("the freeze-dried treats", "冻干零食"),
             ("the interactive toy", "互动玩具"), ("the cosy bed", "舒服的窝"), ("the grooming set", "洗护套装")],
        pros=[("so affectionate", "超级粘人"), ("easy to train", "很好训练"), ("gets along with everyone", "跟谁都处得来"),
              ("healthy and energetic", "健康又活泼"), ("adapts to new places fast", "适应能力很强")],
        cons=[("the shedding is everywhere", "到处掉毛"), ("vet bills add up", "看病开销不小"),
              ("gets bored when left alone", "独处会无聊拆家"), ("picky about food", "挑食")],
        aspects=[("temperament", "性格"), ("care effort", "饲养难度"), ("cost", "花费"), ("space needed", "所需空间")],
        ideas=[("a birthday photoshoot with a tiny hat", "戴小帽子的生日写真"),
               ("a matching owner-and-pet outfit", "主宠同款穿搭"), ("a cosy pet corner by the sofa", "沙发边的宠物角"),
               ("a DIY treat-puzzle toy", "自制藏食玩具"), ("a daily-life photo diary", "日常照片日记"),
               ("a mini habitat makeover", "小窝改造")],
        shops=[("a pet café with resident animals", "有驻店萌宠的宠物咖啡馆"),
               ("a licensed breeder's open day", "正规繁育场的开放日"), ("the adoption centre", "领养中心"),
               ("a big pet store with a play area", "有游乐区的大型宠物店")],
    ),
    "outdoor": dict(
        name=("outdoor gear", "户外装备"),
        verb=("use", "用"),
        place_verb=("buy", "买"),
        constraints=("price", "audience", "time", "attribute"),
        categories={
            "camping": (("camping gear", "露营装备"), [
                ("naturehike_tent", "Naturehike tent", "挪客帐篷"),
                ("sleeping_pad", "inflatable sleeping pad", "充气睡垫"),
                ("camp_lantern", "camping lantern", "露营灯"),
                ("camp_chair", "folding camp chair", "折叠露营椅"),
            ]),
            "hiking": (("hiking gear", "徒步装备"), [
                ("trekking_poles", "trekking poles", "登山杖"),
                ("hiking_boots", "hiking boots", "徒步鞋"),
                ("arcteryx_beta", "Arc'teryx Beta jacket", "始祖鸟Beta冲锋衣"),
                ("daypack", "hiking daypack", "登山背包"),
            ]),
            "cycling": (("cycling gear", "骑行装备"), [
                ("road_bike", "road bike", "公路车"),
                ("brompton", "Brompton folding bike", "小布折叠车"),
                ("cycling_helmet", "cycling helmet", "骑行头盔"),
                ("tail_light", "bike tail light", "自行车尾灯"),
            ]),
            "climbing": (("climbing gear", "攀岩装备"), [
                ("climbing_shoes", "climbing shoes", "攀岩鞋"),
                ("chalk_bag", "chalk bag", "镁粉袋"),
                ("climbing_harness", "climbing harness", "攀岩安全带"),
                ("belay_device", "belay device", "保护器"),
            ]),
            "snow_gear": (("snow gear", "滑雪装备"), [
                ("ski_goggles", "ski goggles", "滑雪镜"),
                ("ski_gloves", "ski gloves", "滑雪手套"),
                ("ski_helmet", "ski helmet", "滑雪头盔"),
                ("base_layer", "thermal base layer", "速干保暖内衣"),
            ]),
        },
        price=((20, 50, 150, 400), (100, 300, 1000, 3000), ("${p}", "{p}元")),
        audiences=[("beginners", "新手"), ("seasoned adventurers", "资深玩家"), ("families", "亲子家庭"),
                   ("women", "女生")],
        attributes=[
            (("lightweight", "轻量化"), ("it is ultralight", "超轻量化"), ("it is on the heavy side", "偏重")),
            (("waterproof", "防水"), ("it is fully waterproof", "完全防水"), ("it is not waterproof", "不防水")),
            (("quick setup", "快速搭建"), ("it is ready in two minutes", "两分钟就能搞定"),
             ("it takes ages to set up", "搭起来很费时间")),
        ],
        howto=[("do a test run at home first", "先在家里试用一遍"), ("check every buckle and strap", "检查每个扣子和绑带"),
               ("pack the heavy stuff close to your back", "重的东西贴近后背放"),
               ("dry it fully before storing", "收纳前彻底晾干"), ("carry a small repair kit", "带一个小修补包"),
               ("adjust the fit before you head out", "出发前调整好松紧"),
               ("check the forecast and trail report", "查好天气和路况")],
        rec=[("the lightweight edition", "轻量版"), ("the starter bundle", "入门套装"), ("the two-person size", "双人款"),
             ("the previous colourway", "上一季的配色"), ("the rental option", "租赁款")],
        pros=[("it packs down small", "收纳体积小"), ("it survived a stormy night", "扛住了一晚风雨"),
              ("really comfortable over long days", "用一整天也舒服"), ("solid build for the price", "这个价位做工很扎实"),
              ("easy to repair", "好修")],
        cons=[("the zippers feel flimsy", "拉链有点不结实"), ("the instructions are vague", "说明写得不清楚"),
              ("it runs a bit small", "尺码偏小"), ("the colour fades in the sun", "晒久了会褪色")],
        aspects=[("weight", "重量"), ("durability", "耐用度"), ("price", "价格"), ("comfort", "舒适度")],
        ideas=[("a sunset campsite layout", "日落营地布置"), ("a gear flatlay before a trip", "出发前的装备平铺"),
               ("a forest picnic setup", "森林野餐布置"), ("a riverside coffee corner", "河边咖啡角"),
               ("an earth-tone outdoor outfit", "大地色户外穿搭"), ("a night shot with string lights", "串灯夜景照")],
        shops=[("an outdoor store with a test wall", "有试用墙的户外店"), ("the brand's flagship store", "品牌旗舰店"),
               ("a rental shop at the trailhead", "登山口的租赁店"), ("a gear swap market", "装备交换市集")],
    ),
    "plants": dict(
        name=("plants", "绿植园艺"),
        verb=("grow", "养"),
        place_verb=("buy", "买"),
        constraints=("price", "audience", "time", "attribute"),
        categories={
            "foliage": (("foliage plant", "观叶植物"), [
                ("monstera", "monstera", "龟背竹"),
                ("pothos", "golden pothos", "绿萝"),
                ("snake_plant", "snake plant", "虎皮兰"),
                ("fiddle_fig", "fiddle leaf fig", "琴叶榕"),
            ]),
            "succulents": (("succulent", "多肉植物"), [
                ("echeveria", "echeveria", "石莲花"),
                ("haworthia", "haworthia", "玉露"),
                ("jade_plant", "jade plant", "燕子掌"),
                ("lithops", "lithops", "生石花"),
            ]),
            "flowers": (("flowering plant", "花卉"), [
                ("rose_bush", "rose bush", "玫瑰花苗"),
                ("hydrangea", "hydrangea", "绣球花"),
                ("orchid", "phalaenopsis orchid", "蝴蝶兰"),
                ("gardenia", "gardenia", "栀子花"),
            ]),
            "edibles": (("balcony edible", "阳台种菜"), [
                ("strawberry_plant", "strawberry plants", "草莓苗"),
                ("basil", "basil", "罗勒"),
                ("chili_plant", "chili pepper plants", "辣椒苗"),
                ("rosemary", "rosemary", "迷迭香"),
            ]),
        },
        price=((5, 10, 20, 50), (20, 50, 100, 300), ("${p}", "{p}元")),
        audiences=[("beginners", "新手"), ("busy office workers", "忙碌的上班族"), ("balcony gardeners", "阳台党"),
                   ("pet owners", "养宠人士")],
        attributes=[
            (("low-light", "耐阴"), ("it copes fine with low light", "耐阴，散光就能活"),
             ("it needs full sun", "需要全日照")),
            (("pet-safe", "对宠物无毒"), ("it is non-toxic to pets", "对猫狗无毒"),
             ("it is toxic to cats and dogs", "对猫狗有毒")),
            (("drought-tolerant", "耐旱"), ("it is fine if you forget to water it", "忘记浇水也没事"),
             ("it needs watering every day", "每天都要浇水")),
        ],
        howto=[("pick a pot with a drainage hole", "选带排水孔的花盆"), ("use a loose, airy soil mix", "用疏松透气的土"),
               ("water only when the top soil is dry", "表土干了再浇水"),
               ("give it bright, indirect light", "放在明亮的散射光处"), ("feed it lightly once a month", "每月薄肥一次"),
               ("wipe the leaves now and then", "时不时擦擦叶片"), ("repot once the roots fill the pot", "根系长满再换盆")],
        rec=[("the small starter pot", "小盆入门款"), ("the large floor specimen", "大型落地款"),
             ("the hanging-basket version", "吊盆款"), ("the variegated variety", "斑锦品种"),
             ("the cutting bundle", "扦插苗套装")],
        pros=[("new growth every week", "每周都在冒新叶"), ("it is very forgiving", "很皮实"),
              ("it makes the room feel alive", "让房间很有生气"), ("it looks lush all year", "一年到头都很茂盛"),
              ("cheap to propagate", "扦插繁殖很便宜")],
        cons=[("it attracts fungus gnats", "容易招小飞虫"), ("it drops leaves when moved", "一挪位置就掉叶子"),
              ("it grows slower than expected", "长得比预期慢"), ("it needs a big pot eventually", "后期需要大盆")],
        aspects=[("ease of care", "好养程度"), ("growth speed", "生长速度"), ("price", "价格"), ("looks", "颜值")],
        ideas=[("a windowsill jungle", "窗台小丛林"), ("a hanging plant shelf", "垂吊植物架"),
               ("a terrarium in a glass jar", "玻璃瓶微景观"), ("a balcony garden corner", "阳台小花园"),
               ("a desk plant trio", "桌面三盆组合"), ("a plant-and-book shelfie", "植物和书的书架摆拍")],
        shops=[("the flower market at dawn", "清晨的花鸟市场"), ("a greenhouse nursery out of town", "郊区的大棚苗圃"),
               ("a plant shop with a café", "带咖啡馆的植物店"), ("a weekend plant fair", "周末植物市集")],
    ),
}

# Keyword collisions: two entities of different domains sharing a surface word.
# A query about one with a note about the other is irrelevant (-1) although the
# word overlaps. ``keyword`` is None for a language where the names do not share it.
COLLISIONS: list[dict] = [
    dict(id="apple", keyword=("apple", "苹果"), entities=("food.fuji_apple", "electronics.apple_watch")),
    dict(id="blackberry", keyword=("blackberr", "黑莓"), entities=("food.blackberries", "electronics.bb_key2")),
    dict(id="coconut", keyword=("coconut", "椰子"), entities=("food.coconut_water", "beauty.coconut_mask")),
    dict(id="green_tea", keyword=("green tea", "绿茶"), entities=("food.longjing", "beauty.innisfree_greentea")),
    dict(id="mouse", keyword=("mouse", "鼠"), entities=("pets.pet_mouse", "electronics.mx_master")),
    dict(id="xiaomi", keyword=(None, "小米"), entities=("food.millet_porridge", "electronics.mi_band")),
    dict(id="python", keyword=("python", None), entities=("pets.ball_python", "study.python_lang")),
    dict(id="coach", keyword=("coach", None), entities=("fashion.coach_tabby", "fitness.running_coach")),
    dict(id="switch", keyword=("switch", None), entities=("electronics.nintendo_switch", "home.smart_switch")),
    dict(id="dove", keyword=("dove", None), entities=("beauty.dove_wash", "food.dove_chocolate")),
    dict(id="mango", keyword=("mango", None), entities=("food.mango_sticky_rice", "fashion.mango_blazer")),
    # Held out with both sides (long-tail only):
    dict(id="cherry", keyword=("cherr", "樱桃"), entities=("food.yantai_cherries", "electronics.cherry_keyboard")),
    dict(id="rose", keyword=("rose", "玫瑰"), entities=("plants.rose_bush", "beauty.rose_mist")),
    dict(id="rust", keyword=("rust", None), entities=("study.rust_lang", "home.rust_remover")),
]

# ---------------------------------------------------------------------------
# Long-tail hold-out: never used by train, val, test_random or the pool.
# ---------------------------------------------------------------------------
HELDOUT_DOMAINS = ("plants",)
HELDOUT_CATEGORIES = (
    "beauty.foundation", "travel.adventure", "fashion.accessories", "fitness.strength",
    "electronics.audio", "home.furniture", "parenting.diapers", "study.exams", "outdoor.snow_gear",
)
HELDOUT_ENTITIES = (
    "beauty.skinaqua", "beauty.rose_mist", "travel.capsule", "food.durian", "food.yantai_cherries",
    "fashion.polene", "fashion.cardigan", "fitness.tabata", "electronics.cherry_keyboard",
    "electronics.quest3", "home.rust_remover", "home.soymilk_maker", "parenting.comotomo",
    "study.rust_lang", "study.mind_map", "pets.maine_coon", "pets.betta", "outdoor.belay_device",
)
# (intent, constraint type) pairs that never occur in training queries.
HELDOUT_COMPOSITIONS = (
    ("comparison", "price"), ("inspiration", "audience"), ("how-to", "place"),
    ("review", "time"), ("purchase", "attribute"),
)

# ---------------------------------------------------------------------------
# Shared vocabulary.
# ---------------------------------------------------------------------------
CITIES: list[Pair] = [
    ("Shanghai", "上海"), ("Beijing", "北京"), ("Chengdu", "成都"), ("Hangzhou", "杭州"), ("Guangzhou", "广州"),
    ("Shenzhen", "深圳"), ("Chongqing", "重庆"), ("Xi'an", "西安"), ("Nanjing", "南京"), ("Xiamen", "厦门"),
    ("Changsha", "长沙"), ("Wuhan", "武汉"), ("Qingdao", "青岛"), ("Dali", "大理"), ("Sanya", "三亚"),
    ("Harbin", "哈尔滨"),
]
SEASONS: list[Pair] = [("spring", "春天"), ("summer", "夏天"), ("autumn", "秋天"), ("winter", "冬天")]
DURATIONS: list[Pair] = [("two weeks", "两周"), ("a month", "一个月"), ("three months", "三个月"),
                         ("half a year", "半年")]
CHANNELS: list[Pair] = [("the official flagship store", "官方旗舰店"), ("a duty-free shop", "免税店"),
                        ("a live-stream sale", "直播间"), ("a group-buy deal", "团购"),
                        ("the brand's mini program", "品牌小程序"), ("a second-hand app", "二手平台")]
DISCOUNTS: list[Pair] = [("stacked a 20%-off coupon", "叠加了八折券"), ("used the member discount", "用了会员折扣"),
                         ("caught a flash sale", "蹲到了限时秒杀"), ("got a free gift with it", "还送了赠品")]
DIRECTIONS: list[Pair] = [("a 10-minute walk from the metro", "地铁站步行10分钟"),
                          ("right next to the mall entrance", "就在商场入口旁边"),
                          ("tucked away in a quiet lane", "藏在一条安静的小巷里"),
                          ("on the 3rd floor, take the side lift", "在三楼，坐侧边电梯上去")]
HOURS: list[Pair] = [("10:00-22:00", "10:00-22:00"), ("11:00-21:00", "11:00-21:00"),
                     ("9:30-20:30", "9:30-20:30")]
PLACE_TIPS: list[Pair] = [("go early to skip the queue", "早点去不用排队"),
                          ("book ahead if you can", "能预约就提前预约"),
                          ("parking is tight, take the metro", "停车位少，建议坐地铁")]
REASONS: list[Pair] = [("never lets me down", "从来没踩雷"), ("the one my friends always ask about", "朋友问爆的一款"),
                       ("best value of the lot", "性价比最高"), ("I have repurchased it three times", "已经回购三次了"),
                       ("underrated but so good", "小众但真的好")]
# Hashtags any note may carry.
GENERIC_TAGS: list[Pair] = [("lifestyle", "生活方式"), ("dailylife", "日常"), ("sharing", "好物分享"),
                            ("weekend", "周末"), ("vlog", "vlog")]

# ---------------------------------------------------------------------------
# Text templates. Placeholders: {E} note subject, {S} second subject of a
# comparison, {verb}/{pv} domain verbs, {city}, {price}, {aud}, {season},
# {phrase}, {dur}, {r} rating, {n} a count.
# ---------------------------------------------------------------------------
QUERY_TEMPLATES: dict[str, dict[str, list[str]]] = {
    "en": {
        "how-to": ["how to {verb} {E}", "{E} tutorial", "{E} step by step", "{E} tips and steps"],
        "recommendation": ["{E} recommendations", "best {E} picks", "which {E} should I choose", "{E} recs"],
        "review": ["{E} review", "{E} honest review", "is {E} worth it", "{E} pros and cons"],
        "place": ["where to {pv} {E}", "{E} spots", "best place to {pv} {E}", "{E} near me"],
        "purchase": ["where to buy {E} online", "{E} deal", "{E} discount", "buy {E}"],
        "comparison": ["{E} vs {S}", "{E} or {S}", "{E} compared to {S}", "{E} vs {S} which is better"],
        "inspiration": ["{E} ideas", "{E} inspo", "{E} aesthetic ideas", "{E} ideas to save"],
    },
    "zh": {
        "how-to": ["{E}怎么{verb}", "{E}教程", "{E}步骤", "{E}方法分享"],
        "recommendation": ["{E}推荐", "{E}怎么选", "求推荐{E}", "{E}选哪款"],
        "review": ["{E}测评", "{E}真实测评", "{E}值得吗", "{E}优缺点"],
        "place": ["哪里可以{pv}{E}", "{E}哪里有", "{E}地址", "{E}线下门店"],
        "purchase": ["{E}购买渠道", "{E}哪里买划算", "{E}优惠", "{E}折扣"],
        "comparison": ["{E}和{S}哪个好", "{E}还是{S}", "{E}对比{S}", "{E} vs {S}"],
        "inspiration": ["{E}灵感", "{E}创意", "{E}氛围感", "{E}灵感合集"],
    },
}

CONSTRAINT_QUERY: dict[str, dict[str, list[str]]] = {
    "en": {
        "place": ["in {city}", "{city}"],
        "price": ["under {price}", "below {price}", "for less than {price}"],
        "audience": ["for {aud}"],
        "time": ["for {season}", "in {season}"],
        "attribute": ["{phrase}"],
    },
    "zh": {
        "place": ["{city}", "{city}本地"],
        "price": ["{price}以内", "预算{price}", "不超过{price}"],
        "audience": ["{aud}", "适合{aud}"],
        "time": ["{season}", "{season}适合"],
        "attribute": ["{phrase}"],
    },
}

# How the note states a fact; `violated_hint` optionally adds the query's own
# value, negated, so the asked-for word appears in a note that violates it.
FACT_TEMPLATES: dict[str, dict[str, list[str]]] = {
    "en": {
        "place": ["📍 {city}", "Location: {city}", "This was in {city}.", "Found this in {city} 📍"],
        "price": ["💰 {price}", "Price: {price}", "It cost {price}.", "Paid {price}, for reference."],
        "audience": ["Best for {aud}.", "Perfect for {aud} 👌", "I'd recommend it for {aud}.",
                     "Made with {aud} in mind."],
        "time": ["Best in {season} 🍃", "Tried it this {season}.", "Ideal for {season}.", "My {season} favourite."],
        "attribute": ["✔️ Good to know: {phrase}.", "Note: {phrase}.", "FYI, {phrase}.", "One detail: {phrase}."],
    },
    "zh": {
        "place": ["📍{city}", "坐标{city}", "这次是在{city}", "{city}的朋友可以冲"],
        "price": ["💰{price}", "价格：{price}", "花了{price}", "参考价{price}"],
        "audience": ["适合{aud}", "{aud}友好👌", "推荐给{aud}", "{aud}可以闭眼入"],
        "time": ["适合{season}🍃", "这个{season}的心头好", "{season}正合适", "今年{season}入的"],
        "attribute": ["✔️{phrase}", "注意：{phrase}", "补充一下：{phrase}", "划重点：{phrase}"],
    },
}
VIOLATED_HINTS: dict[str, dict[str, str]] = {
    "en": {"place": "Heads up: it is in {city}, not {qcity}.", "audience": "Honestly not ideal for {qaud}.",
           "time": "I would skip it in {qseason} though."},
    "zh": {"place": "注意是在{city}，不是{qcity}", "audience": "{qaud}不太推荐", "time": "{qseason}就不太推荐了"},
}

MENTIONS: dict[str, list[str]] = {
    "en": ["P.S. so many of you asked about {M}, that one is coming in another post.",
           "Side note: {M} is next on my list, stay tuned.",
           "Someone in the comments asked about {M}, I will answer that separately.",
           "Also tried {M} last week but that deserves its own post.",
           "Random thought: {M} would make a fun post too 😂",
           "Not today's topic, but yes, {M} is still on my radar."],
    "zh": ["P.S. 好多人问{M}，下一篇再聊～", "另外{M}也在我的清单上，之后再聊",
           "评论区有人问{M}，之后单独开一篇回答", "上周也试了{M}，那个值得另写一篇",
           "突然想到{M}也可以写一篇😂", "今天不聊{M}，但它还在我的清单上"],
}

# Note bodies per intent: title templates, an opening line, and the pieces the
# generator fills from the domain lists.
NOTE_TEMPLATES: dict[str, dict[str, dict[str, list[str]]]] = {
    "en": {
        "how-to": {
            "title": ["{E} tutorial 📝 easy steps", "How I {verb} {E} ✨ save this",
                      "{E}: the method that finally worked 💡"],
            "intro": ["So many of you asked how I {verb} {E}, here is my routine 👇",
                      "Took me a while to get {E} right. Step by step:"],
            "tip": ["💡 Tip: {x}.", "Bonus tip: {x}."],
        },
        "recommendation": {
            "title": ["My {E} picks 🌟 all worth it", "{E}: {n} picks I keep recommending",
                      "Top {E} recommendations 💖"],
            "intro": ["If you are eyeing {E}, these are my picks 👇", "Friends keep asking which {E} to go for, so:"],
            "item": ["{x}: {y}"],
        },
        "review": {
            "title": ["{E} honest review ⭐{r}/5", "{E} after {dur}: my verdict", "{E} review, worth the hype?"],
            "intro": ["Been on {E} for {dur} now. Honest take:", "Finally tried {E}, here is what I think."],
            "pros": ["👍 Pros: {x}; {y}."],
            "cons": ["👎 Cons: {x}."],
            "score": ["Overall: {r}/5 ⭐", "My rating: {r}/5"],
        },
        "place": {
            "title": ["Where to {pv} {E} in {city} 📍", "{E} spots in {city} you will love",
                      "{city}: my go-to place for {E} 📍"],
            "intro": ["Sharing my favourite spot for {E} in {city} 📍", "Found the best place for {E} in {city}!"],
            "where": ["🏠 {x}, {y}.", "It is {x}, {y}."],
            "hours": ["⏰ Open {x}.", "Hours: {x}."],
            "tip": ["Tip: {x}."],
        },
        "purchase": {
            "title": ["{E} deal alert 💰", "How I got {E} for less 🛒", "{E} buying guide: where it is cheapest"],
            "intro": ["Price check on {E} 🛒", "PSA for anyone buying {E}:"],
            "channel": ["Got mine from {x} and {y}.", "Ordered through {x}, {y}."],
            "price": ["Final price: {price}.", "Paid {price} in the end."],
            "ship": ["Arrived in {n} days, well packed.", "Delivery took {n} days."],
        },
        "comparison": {
            "title": ["{E} vs {S} 🆚 which one?", "{E} or {S}? I tried both", "Side by side: {E} vs {S}"],
            "intro": ["I have tried both {E} and {S}, here is the breakdown 🆚",
                      "Comparing {E} and {S} so you do not have to:"],
            "aspect": ["• {x}: {y} wins", "• {x}: {y} comes out ahead"],
            "verdict": ["My pick: {y} if {x} matters most to you.", "Overall I lean towards {y}."],
        },
        "inspiration": {
            "title": ["{n} {E} ideas to save ✨", "{E} inspo board 🌸", "{E} aesthetic: ideas for your next one"],
            "intro": ["Saving these {E} ideas for later ✨", "A little {E} mood board for you 🌸"],
            "idea": ["🌸 {x}", "🌿 {x}", "☁️ {x}", "✨ {x}"],
            "outro": ["Which one is your fave?", "Save it for later!"],
        },
    },
    "zh": {
        "how-to": {
            "title": ["{E}教程📝超简单", "{E}怎么{verb}｜建议收藏✨", "{E}终于找到对的方法了💡"],
            "intro": ["好多姐妹问我{E}怎么{verb}，整理了我的步骤👇", "摸索了好久才把{E}弄明白，分步骤说："],
            "tip": ["💡小贴士：{x}", "额外提醒：{x}"],
        },
        "recommendation": {
            "title": ["{E}推荐🌟闭眼入", "{E}｜我反复推荐的{n}个选择", "{E}种草清单💖"],
            "intro": ["想入{E}的看这里，我的推荐👇", "总有人问{E}选哪个，统一回复："],
            "item": ["{x}：{y}"],
        },
        "review": {
            "title": ["{E}真实测评⭐{r}/5", "{E}用了{dur}的感受", "{E}值不值？说说真话"],
            "intro": ["{E}用了{dur}，说点真实感受：", "终于试了{E}，来交作业了"],
            "pros": ["👍优点：{x}；{y}"],
            "cons": ["👎缺点：{x}"],
            "score": ["综合打分：{r}/5⭐", "我的评分：{r}/5"],
        },
        "place": {
            "title": ["{city}哪里可以{pv}{E}📍", "{city}{E}宝藏店铺", "{city}｜我常去的{E}地点📍"],
            "intro": ["分享我在{city}最爱的{E}地点📍", "在{city}找到了{E}的宝藏地方！"],
            "where": ["🏠{x}，{y}", "位置：{x}，{y}"],
            "hours": ["⏰营业时间{x}", "时间：{x}"],
            "tip": ["小建议：{x}"],
        },
        "purchase": {
            "title": ["{E}捡漏攻略💰", "{E}怎么买最划算🛒", "{E}购买渠道对比"],
            "intro": ["{E}价格情报🛒", "要买{E}的姐妹看过来："],
            "channel": ["我是在{x}买的，{y}", "从{x}下单，{y}"],
            "price": ["到手价{price}", "最后付了{price}"],
            "ship": ["{n}天就到了，包装很好", "物流{n}天"],
        },
        "comparison": {
            "title": ["{E}和{S}🆚怎么选", "{E}还是{S}？两个都试了", "{E} vs {S}横向对比"],
            "intro": ["{E}和{S}我都试过，直接上对比🆚", "帮大家对比一下{E}和{S}："],
            "aspect": ["• {x}：{y}胜出", "• {x}：{y}更好"],
            "verdict": ["如果最看重{x}，选{y}", "总体我更推荐{y}"],
        },
        "inspiration": {
            "title": ["{n}个{E}灵感✨建议收藏", "{E}灵感合集🌸", "{E}氛围感灵感"],
            "intro": ["收藏这些{E}灵感✨", "给大家整理了一组{E}灵感🌸"],
            "idea": ["🌸{x}", "🌿{x}", "☁️{x}", "✨{x}"],
            "outro": ["你最喜欢哪一个？", "先收藏再说！"],
        },
    },
}

# Tag added for the note's intent (notes on the platform label their genre).
INTENT_TAGS: dict[str, Pair] = {
    "how-to": ("tutorial", "教程"), "recommendation": ("recommendations", "种草"), "review": ("review", "测评"),
    "place": ("placeguide", "探店"), "purchase": ("deals", "省钱攻略"), "comparison": ("comparison", "对比"),
    "inspiration": ("inspo", "灵感"),
}


# ---------------------------------------------------------------------------
# Typed view of the data.
# ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Entity:
    id: str  # "domain.short"
    domain: str
    category: str  # "domain.category"
    names: Mapping[str, str]  # lang -> surface name
    verb: Pair
    place_verb: Pair
    constraint_types: tuple[str, ...]

    def name(self, lang: str) -> str:
        return self.names[lang]


def _build_entities() -> dict[str, Entity]:
    entities: dict[str, Entity] = {}
    for dom_id, dom in DOMAINS.items():
        for cat_id, spec in dom["categories"].items():
            overrides = spec[2] if len(spec) > 2 else {}
            for short, en, zh in spec[1]:
                eid = f"{dom_id}.{short}"
                if eid in entities:
                    raise ValueError(f"duplicate entity id {eid}")
                entities[eid] = Entity(
                    id=eid, domain=dom_id, category=f"{dom_id}.{cat_id}", names={"en": en, "zh": zh},
                    verb=overrides.get("verb", dom["verb"]),
                    place_verb=overrides.get("place_verb", dom["place_verb"]),
                    constraint_types=tuple(overrides.get("constraints", dom["constraints"])),
                )
    return entities


ENTITIES: dict[str, Entity] = _build_entities()


def category_name(category: str, lang: str) -> str:
    dom, cat = category.split(".", 1)
    return pick(DOMAINS[dom]["categories"][cat][0], lang)


def domain_name(domain: str, lang: str) -> str:
    return pick(DOMAINS[domain]["name"], lang)


def is_heldout(entity_id: str) -> bool:
    ent = ENTITIES[entity_id]
    return (ent.domain in HELDOUT_DOMAINS or ent.category in HELDOUT_CATEGORIES
            or entity_id in HELDOUT_ENTITIES)


def collision_of(entity_id: str, lang: str) -> list[tuple[str, str]]:
    """(other entity id, shared keyword) for every collision of this entity in ``lang``."""
    out = []
    for col in COLLISIONS:
        keyword = pick(col["keyword"], lang)
        if keyword and entity_id in col["entities"]:
            a, b = col["entities"]
            out.append((b if entity_id == a else a, keyword))
    return out


def validate_lexicon() -> None:
    """Structural checks the generator relies on; raises ValueError on the first problem."""
    for col in COLLISIONS:
        a, b = col["entities"]
        for eid in (a, b):
            if eid not in ENTITIES:
                raise ValueError(f"collision {col['id']}: unknown entity {eid}")
        if ENTITIES[a].domain == ENTITIES[b].domain:
            raise ValueError(f"collision {col['id']}: both sides in domain {ENTITIES[a].domain}")
        if is_heldout(a) != is_heldout(b):
            raise ValueError(f"collision {col['id']}: held out on one side only")
        for lang in LANGS:
            kw = pick(col["keyword"], lang)
            if kw and not all(kw.lower() in ENTITIES[e].name(lang).lower() for e in (a, b)):
                raise ValueError(f"collision {col['id']}: keyword {kw!r} not in both {lang} names")
    for eid in HELDOUT_ENTITIES:
        if eid not in ENTITIES:
            raise ValueError(f"held-out entity {eid} is not in the lexicon")
    for cat in HELDOUT_CATEGORIES:
        dom, c = cat.split(".", 1)
        if c not in DOMAINS.get(dom, {}).get("categories", {}):
            raise ValueError(f"held-out category {cat} is not in the lexicon")
    for intent, ctype in HELDOUT_COMPOSITIONS:
        if intent not in INTENTS or ctype not in CONSTRAINT_TYPES:
            raise ValueError(f"held-out composition {(intent, ctype)} names an unknown intent or type")
    # Comparison and sibling notes need at least three training siblings per category.
    cats: dict[str, list[str]] = {}
    for e in ENTITIES.values():
        cats.setdefault(e.category, []).append(e.id)
    for cat, ids in cats.items():
        pool = ids if all(is_heldout(i) for i in ids) else [i for i in ids if not is_heldout(i)]
        if len(pool) < 3:
            raise ValueError(f"category {cat} keeps only {len(pool)} entities in its split (need 3)")
    names: dict[tuple[str, str], str] = {}
    for e in ENTITIES.values():
        for lang in LANGS:
            key = (lang, e.name(lang).lower())
            if key in names:
                raise ValueError(f"entities {names[key]} and {e.id} share the {lang} name {e.name(lang)!r}")
            names[key] = e.id

"""Built-in text for training the tiny model's tokenizer.

English and Chinese lifestyle notes, search queries, and the judging prompts
and responses the project renders, so that the prompt's fixed wording and the
step tags become few tokens. The text is generated from fixed lists in a fixed
order: the same corpus every time.
"""

from __future__ import annotations

from typing import Iterator

from data_prep.criteria import builtin_criteria, load_criteria
from data_prep.prompt import format_response, render_prompt

# (query, note title, note content, tags); a query and its note per line.
_EN_NOTES = [
    ("matcha latte recipe", "My 5-minute iced matcha latte",
     "Whisk two grams of matcha with a splash of hot water, pour over ice and oat milk. "
     "Sweeten with a little honey. Creamy, not bitter, perfect for summer mornings.",
     ["matcha", "drinks", "recipe"]),
    ("cheap hotels in Kyoto", "Where I stayed in Kyoto for under $60 a night",
     "A quiet guesthouse near Gojo station with shared kitchen and free bikes. "
     "Walking distance to the river, the staff were kind and the room was spotless.",
     ["travel", "kyoto", "budget"]),
    ("iphone 15 battery life", "One month with the iPhone 15: honest battery review",
     "Screen time around seven hours with maps and camera. It lasts a full day, "
     "but heavy gaming drains it by evening. Charging to 80% helps battery health.",
     ["iphone", "review", "tech"]),
    ("apple pie", "Grandma's apple pie with a flaky crust",
     "Use cold butter, six tart apples, cinnamon and a pinch of salt. Bake at 190C "
     "for fifty minutes until the filling bubbles. Let it rest before slicing.",
     ["baking", "dessert", "apple"]),
    ("running shoes for flat feet", "Stability running shoes that saved my knees",
     "After years of pain I switched to shoes with firm arch support. Ten kilometres "
     "a week, no more soreness. Try them in the afternoon when your feet are larger.",
     ["running", "shoes", "fitness"]),
    ("skincare routine for dry skin", "Winter skincare for very dry skin",
     "Gentle cleanser, hydrating toner, a serum with hyaluronic acid and a thick "
     "cream at night. Sunscreen every morning, even when it is cloudy.",
     ["skincare", "beauty", "winter"]),
    ("weekend hike near Seattle", "Easy waterfall hike an hour from Seattle",
     "A four-mile loop through moss-covered forest with two waterfalls. Parking "
     "fills up by nine, so go early. Dogs on leash are welcome.",
     ["hiking", "seattle", "outdoors"]),
    ("small apartment decor ideas", "Making a 30 square metre studio feel bigger",
     "Mirrors opposite the window, a light rug, and furniture on legs. I hid storage "
     "under the bed and painted the walls warm white.",
     ["home", "decor", "small space"]),
    ("best ramen in Tokyo", "Three ramen shops worth the queue in Tokyo",
     "Rich tonkotsu in Shibuya, a clear shoyu broth in Ogikubo, and a spicy miso bowl "
     "near Shinjuku. Expect to wait thirty minutes at lunch.",
     ["food", "tokyo", "ramen"]),
    ("kids birthday party ideas", "A low-budget garden party for a six-year-old",
     "Treasure hunt, paper crowns, and a simple sponge cake. Twelve kids, two hours, "
     "and everyone went home happy and tired.",
     ["kids", "party", "family"]),
    ("coffee grinder comparison", "Burr vs blade grinder: what changed in my cup",
     "The burr grinder gives an even grind, so the pour-over tastes sweeter and "
     "less bitter. The blade grinder is cheaper but noisy and uneven.",
     ["coffee", "comparison", "kitchen"]),
    ("beginner yoga at home", "A gentle 20-minute yoga flow for beginners",
     "Start with breathing, then cat-cow, downward dog and child's pose. Use a towel "
     "if you have no mat. Three times a week is enough to feel the difference.",
     ["yoga", "wellness", "beginner"]),
    ("vegan meal prep", "Meal prep for a week of vegan lunches",
     "Roast chickpeas and sweet potatoes, cook a pot of brown rice, and make a tahini "
     "dressing. Keeps four days in the fridge.",
     ["vegan", "meal prep", "healthy"]),
    ("camera for travel vlog", "The compact camera I use for travel videos",
     "Light, flip screen, good stabilisation and a decent microphone input. Battery "
     "lasts about ninety minutes of filming, so carry a spare.",
     ["camera", "vlog", "travel"]),
    ("wedding guest outfit summer", "Five summer wedding guest looks under $100",
     "Floral midi dress, linen suit, a silk slip dress with a blazer, and comfortable "
     "block heels for dancing on grass.",
     ["fashion", "wedding", "summer"]),
]

_ZH_NOTES = [
    ("抹茶拿铁做法", "五分钟搞定冰抹茶拿铁",
     "两克抹茶粉加少量热水搅匀，倒入加冰的燕麦奶，再加一点蜂蜜。口感顺滑不苦，夏天早上必备。",
     ["抹茶", "饮品", "食谱"]),
    ("京都便宜酒店", "京都每晚不到四百元的民宿",
     "五条站附近的安静民宿，有共享厨房和免费自行车。走路就能到鸭川，老板很热情，房间非常干净。",
     ["旅行", "京都", "省钱"]),
    ("苹果手机续航", "iPhone 15 用了一个月的真实续航",
     "开地图和拍照，屏幕使用时间大约七小时。正常使用能撑一整天，但玩游戏到晚上就没电了。",
     ["苹果", "测评", "数码"]),
    ("苹果派做法", "外婆的酥皮苹果派",
     "用冷黄油、六个酸苹果、肉桂和一小撮盐。一百九十度烤五十分钟，放凉再切。",
     ["烘焙", "甜品", "苹果"]),
    ("扁平足跑鞋推荐", "这双稳定型跑鞋救了我的膝盖",
     "换了有足弓支撑的跑鞋之后，每周跑十公里，膝盖不再酸痛。建议下午去试鞋。",
     ["跑步", "跑鞋", "健身"]),
    ("干皮护肤步骤", "冬季干皮护肤流程",
     "温和洗面奶、保湿水、玻尿酸精华，晚上厚涂面霜。阴天也要每天涂防晒。",
     ["护肤", "美妆", "冬季"]),
    ("成都周末去哪玩", "成都周末一日游路线",
     "上午去人民公园喝盖碗茶，中午吃钟水饺，下午逛宽窄巷子，晚上去九眼桥看夜景。",
     ["成都", "旅行", "周末"]),
    ("小户型装修", "三十平米小户型显大的秘诀",
     "窗户对面挂镜子，铺浅色地毯，选有腿的家具。床底做收纳，墙面刷暖白色。",
     ["家居", "装修", "小户型"]),
    ("上海好吃的火锅", "上海三家值得排队的火锅店",
     "牛油锅底很香，毛肚和鸭肠新鲜，人均一百五十元左右。周末晚上要排一个小时。",
     ["美食", "上海", "火锅"]),
    ("宝宝辅食", "八个月宝宝的一周辅食安排",
     "南瓜泥、胡萝卜粥、蒸蛋羹和鳕鱼面。每次只加一种新食材，观察三天有没有过敏。",
     ["育儿", "辅食", "宝宝"]),
    ("咖啡机推荐", "半自动咖啡机和胶囊机怎么选",
     "半自动机可以自己调研磨和萃取，适合爱折腾的人；胶囊机方便干净，适合上班族。",
     ["咖啡", "对比", "家电"]),
    ("新手瑜伽", "零基础在家练瑜伽二十分钟",
     "先做呼吸练习，再做猫牛式、下犬式和婴儿式。没有瑜伽垫可以用毛巾，每周三次就有效果。",
     ["瑜伽", "健康", "新手"]),
    ("减脂餐", "一周减脂午餐备餐",
     "鸡胸肉、西兰花、糙米饭和紫薯，提前煮好分装，冷藏可以放四天。",
     ["减脂", "备餐", "健康"]),
    ("旅行相机推荐", "我拍旅行视频用的小相机",
     "轻便，有翻转屏，防抖好，可以接麦克风。一块电池能拍九十分钟，记得带备用电池。",
     ["相机", "视频", "旅行"]),
    ("夏天婚礼穿搭", "五套夏季参加婚礼的穿搭",
     "碎花连衣裙、亚麻西装、丝质吊带裙配西装外套，再配一双适合草地的粗跟鞋。",
     ["穿搭", "婚礼", "夏天"]),
]

_EN_STEP_TEXT = {
    "exact": "The note is about the same subject as the query.",
    "related": "The note is about a related item in the same category, not the queried one.",
    "unrelated": "The note is about a different subject; the shared word is a coincidence.",
}
_ZH_STEP_TEXT = {
    "exact": "笔记讲的就是查询的主体。",
    "related": "笔记讲的是同类的相关主体，而不是查询的主体。",
    "unrelated": "笔记讲的是无关主体，只是关键词相同。",
}


def _responses(crit, label: int, lang: str, query: str) -> str:
    """A well-formed response for ``label``, with verdicts consistent with it."""
    step_texts = {}
    for step in crit.steps:
        gold = step.gold_for_label(label)
        verdict = gold[0] if gold else step.verdicts[(abs(label) + len(query)) % len(step.verdicts)]
        table = _ZH_STEP_TEXT if lang == "zh" else _EN_STEP_TEXT
        text = table.get(verdict) or (
            f"查询“{query}”的主体和需求已分析。" if lang == "zh"
            else f"The query '{query}' asks about its subject with a clear need."
        )
        step_texts[step.name] = (text, verdict)
    reasoning = (f"查询是“{query}”，对照笔记内容判断。" if lang == "zh"
                 else f"The query is '{query}'; compare it with the note.")
    return format_response(step_texts, label, crit, lang=lang, reasoning=reasoning)


def iter_corpus() -> Iterator[str]:
    """Yield the built-in corpus, one document at a time."""
    for lang, notes in (("en", _EN_NOTES), ("zh", _ZH_NOTES)):
        for i, (query, title, content, tags) in enumerate(notes):
            yield f"{title}\n{content}\n" + " ".join(f"#{t}" for t in tags)
            # Pair each query with its own note and with two other notes, so the
            # corpus holds matching and mismatching judgements.
            for j in (i, (i + 3) % len(notes), (i + 7) % len(notes)):
                _, n_title, n_content, n_tags = notes[j]
                for name in builtin_criteria():
                    crit = load_criteria(name)
                    if lang not in crit.prompts:
                        continue
                    # Role names lead each turn, as in the chat template.
                    for message in render_prompt(query, n_title, n_content, n_tags, crit, lang):
                        yield f"{message['role']}\n{message['content']}"
                    for label in crit.label_values:
                        yield "assistant\n" + _responses(crit, label, lang, query)

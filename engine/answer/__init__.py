"""From a question and a ranking of passages to an ``Answer`` that tells one story.

``pipeline`` assembles the context, generates and builds the Answer; ``support`` decides whether the answer
rests on the passages it cites; ``postprocess`` cleans the model's text and picks quotable sentences;
``evidence`` lists the passages and highlights the words; ``result`` defines the Answer and its parts.
"""

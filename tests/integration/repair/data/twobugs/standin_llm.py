"""A command-LLM stand-in: reads the prompt and fixes the file each error it shows occurs in.

It knows the two bugs of this project, and answers for a bug only when the prompt shows both the
error and the source of the file it lies in (as a model could only then fix it).
"""

import json
import sys

prompt = sys.stdin.read()
patches = []
if "KeyError: 'learning_rate'" in prompt and "## Source of train.py" in prompt:
    patches.append({"file_path": "train.py", "mode": "search_replace",
                    "search": 'lr = cfg["learning_rate"]', "replace": 'lr = cfg["lr"]'})
if "IndexError: index out of range in self" in prompt and "## Source of model.py" in prompt:
    patches.append({"file_path": "model.py", "mode": "search_replace",
                    "search": "(vocab_size - 1, embed)", "replace": "(vocab_size, embed)"})
with open(sys.argv[1], "a") as log:  # which files each answer fixed, for the test
    log.write(json.dumps([p["file_path"] for p in patches]) + "\n")
print("```json\n" + json.dumps({"patches": patches}) + "\n```")

"""The texts of the detection corpus (bench/policy_corpus.py): templates in four registers.

`{{slot}}` is filled by `policy_corpus.Values`: entity slots (person, email, phone, card, iban,
nid, ssn, nino, ip, ipv6, secret, secret:KIND, env_secret, db_url, address, customer, codename,
project) add a gold span; every other slot is a hard negative that no detector should report
(order and invoice numbers, versions, dates, timestamps, hashes, UUIDs, Luhn-failing 16-digit
numbers, prices, MAC addresses, C++ scopes, OIDs, placeholders where a key would go, companies
that are not customers). The literal text around the slots holds no e-mail, phone, address or
key of its own: every value a detector should find comes from a slot, so the gold is complete.
"""

from __future__ import annotations

PROSE = [
    "Dear {{person}}, thank you for your order {{order}} placed on {{date}}. We will ship it to "
    "{{address}} within five working days.",
    "If you have any questions about invoice {{invoice}}, reply to this e-mail or call us on "
    "{{phone}} between 9 am and 5 pm.",
    "Please find attached invoice {{invoice}} for {{price}}. Payment is due within 30 days to "
    "IBAN {{iban}}, quoting reference {{order}}.",
    "Following our call on {{date}}, {{customer}} will renew for another year under {{project}}; "
    "{{person}} ({{email}}) is the new point of contact.",
    "HR noticed that the {{nid}} of a new starter was entered twice in the payroll system; the "
    "duplicate was removed on {{date}}.",
    "Release {{version}} of the client library fixes the timeout reported on {{date}} (build "
    "{{sha7}}, {{ms}} faster on average).",
    "The card {{last4}} was charged {{price}} on {{date}}; the transaction reference "
    "is {{badcard}}.",
    "Visitor log: {{person}} signed in at reception at {{time}} and connected from {{ip}}.",
    "We have updated the billing details for {{customer}}: card {{card}}, billing contact "
    "{{person}}, {{phone}}.",
    "Security notice: an API key ({{secret}}) was found in a public repository on {{date}} and "
    "has been revoked. No customer data was accessed.",
    "The background check for {{person}} is complete. Applicant's {{nid}}, current address "
    "{{address}}.",
    "Our records show {{other_company}} as a supplier, not a customer; the purchase order "
    "{{order}} for {{price}} was approved on {{date}}.",
    "For the {{codename}} launch, {{customer}} asked for a dedicated contact: please reach "
    "{{person}} at {{email}} or {{phone}}.",
    "The refund of {{price}} for order {{order}} will be paid to the account {{iban}} held by "
    "{{person}}.",
    "Minutes of {{date}}: the team reviewed ticket {{ticket}} and agreed to ship {{version}} "
    "after the {{codename}} freeze; {{pct}} of tests pass.",
    "Please update my contact details: new mobile {{phone}}, new address {{address}}, e-mail "
    "{{email}}.",
    "The tax office requires your {{ssn}} and a copy of the lease for {{address}} before "
    "{{date}}.",
    "Payroll for {{person}} has been moved to {{iban}}; National Insurance number {{nino}} was "
    "confirmed by the employee.",
    "Our partner {{other_company}} sent the quarterly report; revenue rose {{pct}} to "
    "{{price}}, see tracking number {{tracking}} for the printed copy.",
    "The pilot with {{customer}} ({{project}}) starts on {{date}}. Budget: {{price}}.",
    "An engineer connected to the production database from {{ip}} at {{ts}} using the shared "
    "account; the password has since been rotated.",
    "Thank you for your application, {{person}}. We will contact you at {{email}} once the "
    "review of reference {{ticket}} is complete.",
    "The customer disputed a payment on card {{card}}; chargeback case {{order}} is open.",
    "Please wire the deposit of {{price}} to {{iban}} and send the receipt to {{email}}.",
]

CHAT = [
    "hey, can you call me at {{phone}}? I'm out of office till {{date}}",
    "my card {{card}} got declined on order {{order}} :(",
    "here's the key for staging: {{secret}} (rotate it after the demo pls)",
    "pls wire it to {{iban}}, ref {{invoice}}",
    "new address for the contract: {{address}}",
    "the box at {{ip}} is down again, {{version}} broke it",
    "{{person}} from {{customer}} just emailed ({{email}}), wants a call tomorrow",
    "ssn is {{ssn}} for the form",
    "lol the order number is {{order}} not my phone number",
    "ticket {{ticket}}: {{project}} is blocked on {{customer}}",
    "ping me on {{phone}} or {{email}}",
    "price went from {{price}} to {{price}}, that's {{pct}} more",
    "can someone check why {{ipv6}} keeps hitting the login page?",
    "fyi {{person}} is the new contact at {{customer}}",
    "use my other card {{card}} instead, exp {{expiry}}",
    "does anyone have the {{codename}} deck? {{person}} needs it by {{time}}",
    "my {{nid}}, in case the bank asks",
    "{{person}}'s mobile: {{phone}}",
    "who pushed {{sha7}}? tests fail on {{version}}",
    "the tracking number is {{tracking}}, eta {{date}}",
    "OPENAI key expired, new one: {{secret:openai}}",
    "is {{ip}} ours or {{other_company}}'s?",
    "bank details for the refund: {{iban}} ({{person}})",
    "ok sending the signed NDA to {{email}} now",
    "totally unrelated but the wifi password is on the fridge, not in here",
    "oops, wrong paste, ignore this:\n{{secret:private_key}}",
    "db creds moved to the vault, the old url was {{db_url}}",
    "{{person}} moved to {{address}}, update the CRM please",
    "invoice {{invoice}} paid, {{price}}, thx",
    "anyone know {{person}}'s NI number? it's {{nino}} in the old sheet",
]

CODE = [
    'client = OpenAI(api_key="{{secret:openai}}")\nresp = client.chat.completions.create('
    'model="gpt-4o", messages=msgs)',
    "export {{env_secret}}\nexport APP_VERSION={{version}}",
    'headers = {"Authorization": "Bearer {{secret:jwt}}", "X-Request-Id": "{{uuid}}"}',
    "DATABASE_URL={{db_url}}\nREDIS_URL=redis://cache:{{port}}/0",
    'curl -s -H "Authorization: Bearer {{secret}}" https://api.example.com/v1/users/{{uuid}}',
    "INSERT INTO customers (name, email, phone) VALUES ('{{person}}', '{{email}}', '{{phone}}');",
    '{"user": {"name": "{{person}}", "email": "{{email}}", "last_ip": "{{ip}}"}, "order": '
    '"{{order}}", "client": "{{version}}"}',
    'TEST_CARD = "{{card}}"  # a valid test number\nBAD_CARD = "{{badcard}}"  # fails Luhn',
    'PRIVATE_KEY = """{{secret:private_key}}"""',
    "commit {{sha}}\nAuthor: {{person}} <{{email}}>\nDate:   {{date}}\n\n    Bump to {{version}}",
    'std::string host = "{{ip}}";\nstd::vector<int> ids; {{cxx}}();',
    '"dependencies": {"lodash": "^{{version}}", "left-pad": "{{version}}"},\n'
    '"integrity": "{{sri}}"',
    "FROM python@{{digest}}\nRUN pip install app=={{version}}",
    "//registry.npmjs.org/:_authToken={{secret:npm}}",
    'provider "aws" {\n  access_key = "{{secret:aws_access_key}}"\n  secret_key = '
    '"{{secret:aws_secret_key}}"\n  region = "eu-west-1"\n}',
    'SLACK_WEBHOOK = "{{secret:slack_webhook}}"\nrequests.post(SLACK_WEBHOOK, json={"text": msg})',
    'stripe.api_key = "{{secret:stripe}}"\nstripe.Charge.retrieve("{{reqid}}")',
    "DefaultEndpointsProtocol=https;AccountName=prodlogs;AccountKey="
    "{{secret:azure_storage}};EndpointSuffix=core.windows.net",
    'genai.configure(api_key="{{secret:google}}")',
    "anthropic = Anthropic(api_key=\"{{secret:anthropic}}\")  # not {{placeholder}}",
    "assert is_valid_iban('{{iban}}')\nassert not is_valid_card('{{badcard}}')",
    "user = User(name='{{person}}', ssn='{{ssn}}', address='{{address}}')",
    "mac = '{{mac}}'  # eth0\noid = '{{oid}}'",
    'logo = "{{dataurl}}"',
    "# TODO({{handle}}): replace {{placeholder}} with the real key from the vault\n"
    "API_KEY = os.environ['API_KEY']",
    "- name: {{person}}\n  email: {{email}}\n  phone: \"{{phone}}\"\n  customer: {{customer}}",
    "git remote add origin https://{{handle}}:{{secret:github}}@github.com/org/repo.git",
    "HF_TOKEN={{secret:huggingface}} python train.py --epochs 3 --lr {{lr}}",
    "allowlist = ['{{ip}}', '{{ip}}']  # office and VPN\nTIMEOUT_MS = {{bytes}}",
    "fixtures = {'national_id': '{{nid_value}}', 'project': '{{project}}'}",
    "sg = SendGridAPIClient('{{secret:sendgrid}}')\nsg.send(message)",
    "config.twilio_key = '{{secret:twilio}}'\nconfig.mailchimp_key = '{{secret:mailchimp}}'",
    "bot.run('{{secret:discord}}')",
    "square_client = Client(access_token='{{secret:square}}')",
    "[pypi]\n  username = __token__\n  password = {{secret:pypi}}",
    "token = '{{secret:gitlab}}'  # glab ci",
    "SLACK_BOT_TOKEN={{secret:slack}}",
]

LOG = [
    '{{ip}} - - [{{clf}}] "GET /api/v1/orders/{{order}} HTTP/1.1" 200 {{bytes}} "-" '
    '"Mozilla/5.0"',
    "{{ts}} INFO auth login ok user={{email}} ip={{ip}} session={{uuid}}",
    "{{ts}} WARN payment declined card={{card}} amount={{price}} order={{order}}",
    "{{ts}} ERROR db connection failed url={{db_url}} retry_in={{ms}}",
    '{"ts":"{{ts}}","level":"info","msg":"profile updated","user":"{{email}}","phone":'
    '"{{phone}}","req":"{{uuid}}"}',
    "{{syslog}} sshd[{{pid}}]: Accepted publickey for deploy from {{ip}} port {{port}} ssh2",
    "{{syslog}} kernel: eth0: link up, hwaddr {{mac}}",
    "{{ts}} DEBUG outbound headers: Authorization=Bearer {{secret:jwt}}",
    "{{ts}} INFO sent invoice {{invoice}} to {{person}} <{{email}}> total {{price}}",
    "{{ts}} INFO app {{version}} build {{sha7}} listening on {{ip}}:{{port}}",
    "{{ts}} AUDIT kyc check passed for {{person}} ({{nid}})",
    "{{ts}} INFO wire transfer queued iban={{iban}} ref={{order}}",
    "{{ts}} ERROR failed to charge {{customer}} for {{project}}: card_declined",
    "{{ts}} WARN leaked credential detected in commit {{sha}}: {{secret}}",
    "{{ts}} INFO request {{reqid}} took {{ms}} (upstream {{ipv6}})",
    "{{ts}} INFO shipment {{tracking}} to {{address}} created",
    "{{ts}} DEBUG user lookup phone={{phone}} -> id={{uuid}}",
    "{{ts}} INFO batch {{epoch}} processed {{bytes}} records in {{ms}}",
    "{{ts}} WARN rate limit for {{ip}} ({{pct}} of quota), key={{placeholder}}",
    "{{ts}} INFO checksum {{sha256}} ok for release {{winver}}",
    "{{ts}} ERROR TypeError in {{cxx}} at line {{pid}}",
    "{{ts}} INFO {{other_company}} webhook delivered, status 200, {{ms}}",
    "{{ts}} INFO updated record for {{ssn}}",
    "{{ts}} INFO customer={{customer}} contact={{person}} tel={{phone}}",
    "{{ts}} DEBUG env {{env_secret}}",
    "{{ts}} WARN private key found in upload {{uuid}}:\n{{secret:private_key}}",
    "{{ts}} INFO notify {{secret:slack_webhook}} status=200",
    "{{ts}} INFO NINO {{nino}} matched employee {{person}}",
    "{{ts}} INFO card on file {{last4}}, exp {{expiry}}, order {{order}}",
]

REGISTERS = {"prose": PROSE, "chat": CHAT, "code": CODE, "log": LOG}
# How a sample joins the templates it draws (one to three) from its register.
JOINERS = {"prose": " ", "chat": "\n", "code": "\n\n", "log": "\n"}

"""Everything the service itself says on a call, in every language it offers: one typed table.

The receptionist model speaks for itself in the caller's language; these are the lines said *around* it —
TwiML `<Say>` when the model can't (fallbacks, voicemail, the cut-off apology, plan limits), the greeting's
fixed parts (welcome back, the recording notice), and the exact words the model is told to say for the
service (the resume line after a dropped connection, silence prompts, time limits, a language not offered).
A typed table rather than gettext catalogues: about twenty short lines, each needed in every offered
language at run time (no per-process locale switching), and a test checks that none is missing.

`say(response, text, language)` adds a `<Say>` with the Twilio voice and `language` of that locale.
"""

from __future__ import annotations

from collections.abc import Sequence
from enum import StrEnum

from babel.lists import format_list
from twilio.twiml.voice_response import VoiceResponse

from app.i18n.languages import Language, get


class Line(StrEnum):
    GREETING = "greeting"
    WELCOME_BACK = "welcome_back"
    RECORDING_NOTICE = "recording_notice"
    UNKNOWN_NUMBER = "unknown_number"
    CALL_UNAVAILABLE = "call_unavailable"
    CUT_OFF = "cut_off"
    RECEPTIONIST_UNAVAILABLE = "receptionist_unavailable"
    TROUBLE = "trouble"
    FORWARD_TROUBLE = "forward_trouble"
    TRANSFER = "transfer"
    VOICEMAIL_TROUBLE = "voicemail_trouble"
    AFTER_HOURS = "after_hours"
    NOBODY_AVAILABLE = "nobody_available"
    VOICEMAIL_PROMPT = "voicemail_prompt"
    NO_MESSAGE = "no_message"
    THANKS = "thanks"
    RESUME = "resume"
    RESUME_WAITING = "resume_waiting"
    MOVED = "moved"
    STILL_THERE = "still_there"
    SILENCE_GOODBYE = "silence_goodbye"
    TIME_LIMIT_GOODBYE = "time_limit_goodbye"
    NOT_OFFERED = "not_offered"
    # issue 16, calls the business places: {business}, {name} (", Jane" or ""), {service}, {when}, {purpose},
    # {number} (the business's, to call back)
    CONFIRMATION_OPENING = "confirmation_opening"
    CALLBACK_OPENING = "callback_opening"
    CONFIRMATION_VOICEMAIL = "confirmation_voicemail"
    CALLBACK_VOICEMAIL = "callback_voicemail"
    OWNER_WHISPER = "owner_whisper"


#: line -> base language -> words. Placeholders: {name} (business), {first_name}, {languages}.
CATALOGUE: dict[Line, dict[str, str]] = {
    Line.GREETING: {
        "en": "Thanks for calling {name}. How can I help you today?",
        "es": "Gracias por llamar a {name}. ¿En qué puedo ayudarle hoy?",
        "fr": "Merci d'avoir appelé {name}. Comment puis-je vous aider aujourd'hui ?",
        "de": "Danke für Ihren Anruf bei {name}. Wie kann ich Ihnen heute helfen?",
        "pt": "Obrigado por ligar para {name}. Como posso ajudar hoje?",
    },
    Line.WELCOME_BACK: {
        "en": "Hi {first_name}, welcome back!",
        "es": "¡Hola, {first_name}! Qué gusto saludarle de nuevo.",
        "fr": "Bonjour {first_name}, bon retour parmi nous !",
        "de": "Hallo {first_name}, schön, wieder von Ihnen zu hören!",
        "pt": "Olá, {first_name}! Que bom falar com você de novo.",
    },
    Line.RECORDING_NOTICE: {
        "en": "Just so you know, this call is recorded.",
        "es": "Le informamos que esta llamada se graba.",
        "fr": "Nous vous informons que cet appel est enregistré.",
        "de": "Zu Ihrer Information: Dieses Gespräch wird aufgezeichnet.",
        "pt": "Informamos que esta ligação está sendo gravada.",
    },
    Line.UNKNOWN_NUMBER: {
        "en": "Sorry, this number is not set up to take calls yet. Goodbye.",
        "es": "Lo sentimos, este número todavía no está configurado para recibir llamadas. Adiós.",
        "fr": "Désolé, ce numéro n'est pas encore configuré pour recevoir des appels. Au revoir.",
        "de": "Leider ist diese Nummer noch nicht für Anrufe eingerichtet. Auf Wiederhören.",
        "pt": "Desculpe, este número ainda não está configurado para receber ligações. Até logo.",
    },
    Line.CALL_UNAVAILABLE: {
        "en": "Sorry, we can't take your call right now. Please try again later. Goodbye.",
        "es": "Lo sentimos, en este momento no podemos atender su llamada. Por favor, inténtelo más tarde. Adiós.",
        "fr": "Désolé, nous ne pouvons pas prendre votre appel pour le moment. Veuillez réessayer plus tard. "
              "Au revoir.",
        "de": "Leider können wir Ihren Anruf gerade nicht entgegennehmen. Bitte versuchen Sie es später noch "
              "einmal. Auf Wiederhören.",
        "pt": "Desculpe, não podemos atender sua ligação agora. Por favor, tente novamente mais tarde. Até logo.",
    },
    Line.CUT_OFF: {
        "en": "Sorry, we were cut off. Please call back in a minute. Goodbye.",
        "es": "Disculpe, se cortó la llamada. Por favor, vuelva a llamar en un minuto. Adiós.",
        "fr": "Désolé, la communication a été coupée. Merci de rappeler dans une minute. Au revoir.",
        "de": "Entschuldigung, die Verbindung wurde unterbrochen. Bitte rufen Sie in einer Minute wieder an. "
              "Auf Wiederhören.",
        "pt": "Desculpe, a ligação caiu. Por favor, ligue de novo em um minuto. Até logo.",
    },
    Line.RECEPTIONIST_UNAVAILABLE: {
        "en": "Sorry, the receptionist is unavailable right now. Please try again later.",
        "es": "Lo sentimos, la recepción no está disponible en este momento. Por favor, inténtelo más tarde.",
        "fr": "Désolé, l'accueil n'est pas disponible pour le moment. Veuillez réessayer plus tard.",
        "de": "Leider ist der Empfang gerade nicht erreichbar. Bitte versuchen Sie es später noch einmal.",
        "pt": "Desculpe, a recepção não está disponível agora. Por favor, tente novamente mais tarde.",
    },
    Line.TROUBLE: {
        "en": "Sorry, we're having technical trouble. Please call back in a few minutes.",
        "es": "Lo sentimos, tenemos problemas técnicos. Por favor, vuelva a llamar en unos minutos.",
        "fr": "Désolé, nous rencontrons un problème technique. Merci de rappeler dans quelques minutes.",
        "de": "Entschuldigung, wir haben gerade technische Probleme. Bitte rufen Sie in ein paar Minuten wieder an.",
        "pt": "Desculpe, estamos com problemas técnicos. Por favor, ligue de novo em alguns minutos.",
    },
    Line.FORWARD_TROUBLE: {
        "en": "Sorry, we're having trouble on this line. Let me put you through to someone.",
        "es": "Disculpe, tenemos problemas con esta línea. Le comunico con una persona.",
        "fr": "Désolé, nous avons un problème sur cette ligne. Je vous passe quelqu'un.",
        "de": "Entschuldigung, wir haben Probleme mit dieser Leitung. Ich verbinde Sie mit jemandem aus dem Team.",
        "pt": "Desculpe, estamos com problemas nesta linha. Vou transferir você para alguém da equipe.",
    },
    Line.TRANSFER: {
        "en": "Please hold while I put you through.",
        "es": "Un momento, por favor, le estoy transfiriendo.",
        "fr": "Veuillez patienter, je vous mets en relation.",
        "de": "Bitte bleiben Sie dran, ich verbinde Sie.",
        "pt": "Aguarde um momento, por favor, vou transferir sua ligação.",
    },
    Line.VOICEMAIL_TROUBLE: {
        "en": "Sorry, we're having trouble on this line.",
        "es": "Disculpe, tenemos problemas con esta línea.",
        "fr": "Désolé, nous avons un problème sur cette ligne.",
        "de": "Entschuldigung, wir haben Probleme mit dieser Leitung.",
        "pt": "Desculpe, estamos com problemas nesta linha.",
    },
    Line.AFTER_HOURS: {
        "en": "Thanks for calling. We're closed right now.",
        "es": "Gracias por llamar. En este momento estamos cerrados.",
        "fr": "Merci de votre appel. Nous sommes actuellement fermés.",
        "de": "Danke für Ihren Anruf. Wir haben gerade geschlossen.",
        "pt": "Obrigado por ligar. Estamos fechados no momento.",
    },
    Line.NOBODY_AVAILABLE: {
        "en": "Sorry, no one can take your call right now.",
        "es": "Lo sentimos, en este momento nadie puede atender su llamada.",
        "fr": "Désolé, personne ne peut prendre votre appel pour le moment.",
        "de": "Leider kann gerade niemand Ihren Anruf entgegennehmen.",
        "pt": "Desculpe, ninguém pode atender sua ligação agora.",
    },
    Line.VOICEMAIL_PROMPT: {
        "en": "Please leave your name, number and a short message after the tone.",
        "es": "Por favor, deje su nombre, su número y un breve mensaje después del tono.",
        "fr": "Veuillez laisser votre nom, votre numéro et un court message après le bip.",
        "de": "Bitte hinterlassen Sie nach dem Signalton Ihren Namen, Ihre Nummer und eine kurze Nachricht.",
        "pt": "Por favor, deixe seu nome, seu número e uma mensagem curta após o sinal.",
    },
    Line.NO_MESSAGE: {
        "en": "We didn't get a message. Goodbye.",
        "es": "No recibimos ningún mensaje. Adiós.",
        "fr": "Nous n'avons pas reçu de message. Au revoir.",
        "de": "Wir haben keine Nachricht erhalten. Auf Wiederhören.",
        "pt": "Não recebemos nenhuma mensagem. Até logo.",
    },
    Line.THANKS: {
        "en": "Thank you, we'll get back to you. Goodbye.",
        "es": "Gracias, nos pondremos en contacto con usted. Adiós.",
        "fr": "Merci, nous vous recontacterons. Au revoir.",
        "de": "Vielen Dank, wir melden uns bei Ihnen. Auf Wiederhören.",
        "pt": "Obrigado, entraremos em contato. Até logo.",
    },
    Line.RESUME: {
        "en": "Sorry, I lost you for a second — could you say that again?",
        "es": "Disculpe, se perdió la conexión un instante. ¿Podría repetirlo?",
        "fr": "Excusez-moi, je vous ai perdu un instant. Pouvez-vous répéter ?",
        "de": "Entschuldigung, die Verbindung war kurz weg. Könnten Sie das bitte wiederholen?",
        "pt": "Desculpe, perdi a conexão por um instante. Pode repetir, por favor?",
    },
    Line.RESUME_WAITING: {
        "en": "Sorry, I lost you for a second — one moment.",
        "es": "Disculpe, se perdió la conexión un instante. Un momento, por favor.",
        "fr": "Excusez-moi, je vous ai perdu un instant. Un moment, s'il vous plaît.",
        "de": "Entschuldigung, die Verbindung war kurz weg. Einen Moment bitte.",
        "pt": "Desculpe, perdi a conexão por um instante. Só um momento.",
    },
    # Said by the instance a call moved to on a planned restart; the caller may or may not have been speaking.
    Line.MOVED: {
        "en": "Sorry, the line cut out for a second — I'm still here. Go ahead.",
        "es": "Disculpe, la línea se cortó un instante. Sigo aquí, dígame.",
        "fr": "Excusez-moi, la ligne a coupé un instant. Je suis toujours là, je vous écoute.",
        "de": "Entschuldigung, die Leitung war kurz unterbrochen. Ich bin noch da, bitte sprechen Sie.",
        "pt": "Desculpe, a linha caiu por um instante. Continuo aqui, pode falar.",
    },
    Line.STILL_THERE: {
        "en": "Are you still there?",
        "es": "¿Sigue ahí?",
        "fr": "Vous êtes toujours là ?",
        "de": "Sind Sie noch da?",
        "pt": "Você ainda está aí?",
    },
    Line.SILENCE_GOODBYE: {
        "en": "I'll end the call now. Feel free to call back any time. Goodbye.",
        "es": "Voy a terminar la llamada. Puede volver a llamar cuando quiera. Adiós.",
        "fr": "Je vais mettre fin à l'appel. N'hésitez pas à rappeler quand vous voulez. Au revoir.",
        "de": "Ich beende jetzt das Gespräch. Rufen Sie gern jederzeit wieder an. Auf Wiederhören.",
        "pt": "Vou encerrar a ligação agora. Pode ligar de novo quando quiser. Até logo.",
    },
    Line.TIME_LIMIT_GOODBYE: {
        "en": "I'm sorry, I have to end the call now. Please call back if you need more help. Goodbye.",
        "es": "Lo siento, tengo que terminar la llamada. Si necesita más ayuda, vuelva a llamar. Adiós.",
        "fr": "Toutes mes excuses, je dois mettre fin à l'appel. Si vous avez encore besoin d'aide, n'hésitez pas "
              "à rappeler. Au revoir.",
        "de": "Es tut mir leid, ich muss das Gespräch jetzt beenden. Wenn Sie weitere Hilfe brauchen, rufen Sie "
              "gern wieder an. Auf Wiederhören.",
        "pt": "Sinto muito, preciso encerrar a ligação agora. Se precisar de mais ajuda, ligue de novo. Até logo.",
    },
    Line.NOT_OFFERED: {
        "en": "I'm sorry, on this line we can only help you in {languages}. I can take a message, and someone "
              "will call you back.",
        "es": "Lo siento, en esta línea solo podemos atenderle en {languages}. Puedo tomar un mensaje y alguien "
              "le devolverá la llamada.",
        "fr": "Toutes mes excuses, sur cette ligne nous ne pouvons vous répondre qu'en {languages}. Je peux "
              "prendre un message, et quelqu'un vous rappellera.",
        "de": "Es tut mir leid, auf dieser Leitung können wir Ihnen nur auf {languages} helfen. Ich kann eine "
              "Nachricht aufnehmen, dann ruft Sie jemand zurück.",
        "pt": "Sinto muito, nesta linha só podemos atender em {languages}. Posso anotar um recado, e alguém "
              "retornará sua ligação.",
    },
    Line.CONFIRMATION_OPENING: {
        "en": "Hi{name}, this is the receptionist at {business}, calling about your {service} on {when}. "
              "Can you still make it?",
        "es": "Hola{name}, le llama la recepción de {business} por su cita de {service} el {when}. "
              "¿Podrá venir?",
        "fr": "Bonjour{name}, ici l'accueil de {business}, je vous appelle au sujet de votre rendez-vous "
              "{service} le {when}. Pourrez-vous toujours venir ?",
        "de": "Hallo{name}, hier ist die Rezeption von {business}. Ich rufe wegen Ihres Termins {service} am "
              "{when} an. Passt es Ihnen noch?",
        "pt": "Olá{name}, aqui é a recepção de {business}, estou ligando sobre o seu horário de {service} em "
              "{when}. Você ainda pode vir?",
    },
    Line.CALLBACK_OPENING: {
        "en": "Hi{name}, this is the receptionist at {business}, calling you back about {purpose}.",
        "es": "Hola{name}, le llama la recepción de {business} para responderle sobre {purpose}.",
        "fr": "Bonjour{name}, ici l'accueil de {business}, je vous rappelle au sujet de : {purpose}.",
        "de": "Hallo{name}, hier ist die Rezeption von {business}. Ich rufe Sie zurück wegen: {purpose}.",
        "pt": "Olá{name}, aqui é a recepção de {business}, retornando a sua ligação sobre {purpose}.",
    },
    Line.CONFIRMATION_VOICEMAIL: {
        "en": "Hello, this is {business}, calling about your {service} on {when}. If you need to change or "
              "cancel it, please call us back at {number}. Thank you, goodbye.",
        "es": "Hola, le llamamos de {business} por su cita de {service} el {when}. Si necesita cambiarla o "
              "cancelarla, llámenos al {number}. Gracias, adiós.",
        "fr": "Bonjour, ici {business}, au sujet de votre rendez-vous {service} le {when}. Pour le déplacer ou "
              "l'annuler, rappelez-nous au {number}. Merci, au revoir.",
        "de": "Guten Tag, hier ist {business} wegen Ihres Termins {service} am {when}. Wenn Sie ihn verschieben "
              "oder absagen möchten, rufen Sie uns bitte unter {number} zurück. Vielen Dank, auf Wiederhören.",
        "pt": "Olá, aqui é {business}, sobre o seu horário de {service} em {when}. Se precisar mudar ou "
              "cancelar, ligue para nós no {number}. Obrigado, tchau.",
    },
    Line.CALLBACK_VOICEMAIL: {
        "en": "Hello, this is {business}, calling you back about {purpose}. Please call us back at {number} "
              "when you can. Thank you, goodbye.",
        "es": "Hola, le llamamos de {business} sobre {purpose}. Por favor, llámenos al {number} cuando pueda. "
              "Gracias, adiós.",
        "fr": "Bonjour, ici {business}, je vous rappelle au sujet de : {purpose}. Rappelez-nous au {number} "
              "quand vous pourrez. Merci, au revoir.",
        "de": "Guten Tag, hier ist {business}, wir rufen Sie zurück wegen: {purpose}. Bitte rufen Sie uns unter "
              "{number} zurück, wenn es Ihnen passt. Vielen Dank, auf Wiederhören.",
        "pt": "Olá, aqui é {business}, retornando sobre {purpose}. Por favor, ligue para nós no {number} quando "
              "puder. Obrigado, tchau.",
    },
    Line.OWNER_WHISPER: {
        "en": "Calling {name} for you now.",
        "es": "Ahora llamo a {name}.",
        "fr": "J'appelle {name} pour vous.",
        "de": "Ich verbinde Sie jetzt mit {name}.",
        "pt": "Ligando para {name} agora.",
    },
}

#: base languages every line exists in (a test checks the table against it and against languages.SUPPORTED)
CATALOGUE_LANGUAGES = ("en", "es", "fr", "de", "pt")


def text(line: Line, language: str | Language | None, **values: str) -> str:
    """The words of `line` in `language` (a BCP-47 code or Language; unknown: the default language)."""
    lang = get(language)
    words = CATALOGUE[line].get(lang.base) or CATALOGUE[line]["en"]
    return words.format(**values) if values else words


def language_list(languages: Sequence[Language], in_language: str | Language | None) -> str:
    """"English and Spanish" / "inglés y español": the offered languages named in `in_language`."""
    lang = get(in_language)
    names = [language.language_name(lang.code) for language in languages]
    return str(format_list(names, locale=lang.babel))


def say(response: VoiceResponse, words: str, language: str | Language | None) -> None:
    """Append `<Say voice=… language=…>words</Say>` read by the Twilio voice of `language`."""
    lang = get(language)
    response.say(words, voice=lang.twilio_voice, language=lang.twilio_language)


def say_line(response: VoiceResponse, line: Line, language: str | Language | None, **values: str) -> None:
    say(response, text(line, language, **values), language)

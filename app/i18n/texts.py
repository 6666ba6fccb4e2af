"""Everything the service writes to people, in every language it offers: one typed table beside the spoken one.

`app.i18n.lines` holds what the service *says* on a call; this module holds what it *writes*: the owner's
notifications (email and SMS: headlines, what to do, the daily digest, the usage warnings, an outbound call
that didn't happen, the outcome labels and end-reason words inside them) in the owner's language
(`languages.for_owner`), and the customer's confirmation, reminder and cancellation texts in the customer's
(`languages.for_customer`). Same reasons as the spoken table for a typed table over gettext: short lines,
every language needed in one process at once, a test checks none is missing and the placeholders match.

Texts to customers keep the English keyword STOP in every language: it is the keyword Twilio's opt-out
handling acts on, whatever the language of the sentence around it.

Counted words ("1 call", "2 calls") have a singular and a plural form per language; Babel's CLDR plural rules
pick between them (French and Brazilian Portuguese say "0 appel", English "0 calls").
"""

from __future__ import annotations

from enum import StrEnum

from babel.numbers import format_decimal

from app.i18n.languages import Language, get


class Written(StrEnum):
    # -- the owner's notifications ------------------------------------------------------------------------
    A_CALLER = "a_caller"
    CALL_BACK_NAMED = "call_back_named"
    CALL_BACK_THEM = "call_back_them"
    NO_NUMBER = "no_number"
    URGENT = "urgent"
    LEFT_MESSAGE = "left_message"
    NOBODY_REACHED = "nobody_reached"
    WANTS_CALLBACK = "wants_callback"
    NEEDS_REPLY = "needs_reply"
    SEE_THE_CALL = "see_the_call"
    CALL_FAILED = "call_failed"
    NOT_FINISHED = "not_finished"
    CHECK_RECORD = "check_record"
    NEW_BOOKING = "new_booking"
    BOOKING_MOVED = "booking_moved"
    BOOKING_CANCELLED = "booking_cancelled"
    APPOINTMENT = "appointment"
    BOOKED_BY_PHONE = "booked_by_phone"
    RESCHEDULED_BY_PHONE = "rescheduled_by_phone"
    CANCELLED_BY_PHONE = "cancelled_by_phone"
    NOTHING_BOOKED = "nothing_booked"
    NOTHING_FREE = "nothing_free"
    # an outbound call the receptionist could not make (issue 16): {name}, {purpose}, {reason}, {phone}
    UNREACHED = "unreached"
    UNREACHED_CONFIRMATION = "unreached_confirmation"
    UNREACHED_CONFIRMATION_ABOUT = "unreached_confirmation_about"
    UNREACHED_CALLBACK = "unreached_callback"
    UNREACHED_CALLBACK_ABOUT = "unreached_callback_about"
    CALL_YOURSELF = "call_yourself"
    SEE_CALLS_OUT = "see_calls_out"
    # why it didn't happen (`details["reason_code"]`); {attempts}, {outcome}, {detail}
    REASON_NO_ANSWER = "reason_no_answer"
    REASON_OPTED_OUT = "reason_opted_out"
    REASON_NOT_ON_RECORD = "reason_not_on_record"
    REASON_NO_BUSINESS_NUMBER = "reason_no_business_number"
    REASON_MINUTES_USED = "reason_minutes_used"
    REASON_NOT_REACHED = "reason_not_reached"
    REASON_CANT_CALL = "reason_cant_call"
    REASON_TWILIO_REFUSED = "reason_twilio_refused"
    ATTEMPT_NO_ANSWER = "attempt_no_answer"
    ATTEMPT_BUSY = "attempt_busy"
    ATTEMPT_FAILED = "attempt_failed"
    # the daily digest
    DIGEST_HEAD = "digest_head"
    READ_MESSAGES = "read_messages"
    NOTHING_WAITING = "nothing_waiting"
    UNREAD_HEADING = "unread_heading"
    # the test notification
    TEST_HEAD = "test_head"
    TEST_SUMMARY = "test_summary"
    TEST_TODO = "test_todo"
    # the email's labelled lines
    CALLER_LINE = "caller_line"
    LANGUAGE_LINE = "language_line"
    WHAT_TO_DO = "what_to_do"
    CALL_LINK = "call_link"
    OPEN_LINK = "open_link"
    # issue 13's usage warnings: {plan}, {included}, {used}, {threshold}, {phone}, {date}, {fallback}, {renews}
    PLAN_FALLBACK = "plan_fallback"
    FORWARDED_TO = "forwarded_to"
    TO_VOICEMAIL = "to_voicemail"
    RENEWS = "renews"
    ALL_USED = "all_used"
    STILL_ANSWERED_BILLED = "still_answered_billed"
    NOTHING_BIGGER = "nothing_bigger"
    FROM_NOW = "from_now"
    UPGRADE_AGAIN = "upgrade_again"
    USED_SHARE = "used_share"
    OVERAGE_LATER = "overage_later"
    FALLBACK_LATER = "fallback_later"
    UPGRADE_KEEP = "upgrade_keep"
    # -- the customer's texts: {business}, {your_service}, {when}, {number} -------------------------------
    YOUR_SERVICE = "your_service"
    YOUR_APPOINTMENT = "your_appointment"
    CONFIRM_BOOKED = "confirm_booked"
    CONFIRM_RESCHEDULED = "confirm_rescheduled"
    CONFIRM_CANCELLED = "confirm_cancelled"
    REMINDER = "reminder"
    TO_CHANGE = "to_change"
    TO_BOOK_AGAIN = "to_book_again"
    OPT_OUT = "opt_out"


class Counted(StrEnum):
    CALLS = "calls"
    NEW_BOOKINGS = "new_bookings"
    UNREAD_MESSAGES = "unread_messages"
    CALLS_TO_FOLLOW_UP = "calls_to_follow_up"
    CANCELLATIONS = "cancellations"


#: line -> base language -> words
CATALOGUE: dict[Written, dict[str, str]] = {
    Written.A_CALLER: {"en": "A caller", "es": "Alguien", "fr": "Un appelant", "de": "Jemand", "pt": "Alguém"},
    Written.CALL_BACK_NAMED: {
        "en": "Call {name} back on {phone}.",
        "es": "Llame a {name} al {phone}.",
        "fr": "Rappelez {name} au {phone}.",
        "de": "Rufen Sie {name} unter {phone} zurück.",
        "pt": "Ligue de volta para {name} no {phone}.",
    },
    Written.CALL_BACK_THEM: {
        "en": "Call them back on {phone}.",
        "es": "Devuelva la llamada al {phone}.",
        "fr": "Rappelez le {phone}.",
        "de": "Rufen Sie unter {phone} zurück.",
        "pt": "Ligue de volta para o {phone}.",
    },
    Written.NO_NUMBER: {
        "en": "They left no number: see the call for details.",
        "es": "No dejó ningún número: vea la llamada para más detalles.",
        "fr": "Aucun numéro laissé : voyez l'appel pour les détails.",
        "de": "Keine Nummer hinterlassen: Details stehen beim Anruf.",
        "pt": "Não deixou número: veja a chamada para mais detalhes.",
    },
    Written.URGENT: {"en": "URGENT: ", "es": "URGENTE: ", "fr": "URGENT : ", "de": "DRINGEND: ", "pt": "URGENTE: "},
    Written.LEFT_MESSAGE: {
        "en": "{who} left a message",
        "es": "{who} dejó un mensaje",
        "fr": "{who} a laissé un message",
        "de": "{who} hat eine Nachricht hinterlassen",
        "pt": "{who} deixou um recado",
    },
    Written.NOBODY_REACHED: {
        "en": "{who} asked for a person, but nobody could be reached",
        "es": "{who} pidió hablar con una persona, pero no se localizó a nadie",
        "fr": "{who} a demandé à parler à une personne, mais personne n'a pu être joint",
        "de": "{who} wollte eine Person sprechen, aber niemand war erreichbar",
        "pt": "{who} pediu para falar com uma pessoa, mas ninguém foi encontrado",
    },
    Written.WANTS_CALLBACK: {
        "en": "{who} asked to be called back",
        "es": "{who} pidió que le devuelvan la llamada",
        "fr": "{who} demande à être rappelé",
        "de": "{who} bittet um Rückruf",
        "pt": "{who} pediu retorno da ligação",
    },
    Written.NEEDS_REPLY: {
        "en": "{who} needs a reply",
        "es": "{who} espera una respuesta",
        "fr": "{who} attend une réponse",
        "de": "{who} wartet auf eine Antwort",
        "pt": "{who} aguarda uma resposta",
    },
    Written.SEE_THE_CALL: {
        "en": "See the call.", "es": "Vea la llamada.", "fr": "Voir l'appel.", "de": "Siehe Anruf.",
        "pt": "Veja a chamada.",
    },
    Written.CALL_FAILED: {
        "en": "A call from {who} failed",
        "es": "Falló una llamada de {who}",
        "fr": "Un appel de {who} a échoué",
        "de": "Ein Anruf von {who} ist fehlgeschlagen",
        "pt": "Uma chamada de {who} falhou",
    },
    Written.NOT_FINISHED: {
        "en": "The receptionist could not finish the call.",
        "es": "La recepcionista no pudo terminar la llamada.",
        "fr": "La réceptionniste n'a pas pu terminer l'appel.",
        "de": "Die Rezeption konnte das Gespräch nicht zu Ende führen.",
        "pt": "A recepcionista não conseguiu concluir a chamada.",
    },
    Written.CHECK_RECORD: {
        "en": "Check the call record; the caller may not have been helped.",
        "es": "Revise el registro de la llamada; quizá no se atendió a la persona.",
        "fr": "Vérifiez la fiche de l'appel ; l'appelant n'a peut-être pas été aidé.",
        "de": "Prüfen Sie den Anruf; dem Anrufer wurde womöglich nicht geholfen.",
        "pt": "Confira o registro da chamada; talvez a pessoa não tenha sido atendida.",
    },
    Written.NEW_BOOKING: {
        "en": "New booking: {service}, {when}, for {who}",
        "es": "Nueva reserva: {service}, {when}, para {who}",
        "fr": "Nouvelle réservation : {service}, {when}, pour {who}",
        "de": "Neue Buchung: {service}, {when}, für {who}",
        "pt": "Novo agendamento: {service}, {when}, para {who}",
    },
    Written.BOOKING_MOVED: {
        "en": "Booking moved: {service} now {when}, for {who}",
        "es": "Reserva cambiada: {service} ahora el {when}, para {who}",
        "fr": "Réservation déplacée : {service} désormais le {when}, pour {who}",
        "de": "Buchung verschoben: {service} jetzt am {when}, für {who}",
        "pt": "Agendamento alterado: {service} agora em {when}, para {who}",
    },
    Written.BOOKING_CANCELLED: {
        "en": "Booking cancelled: {service}, {when}, for {who}",
        "es": "Reserva cancelada: {service}, {when}, para {who}",
        "fr": "Réservation annulée : {service}, {when}, pour {who}",
        "de": "Buchung storniert: {service}, {when}, für {who}",
        "pt": "Agendamento cancelado: {service}, {when}, para {who}",
    },
    Written.APPOINTMENT: {"en": "Appointment", "es": "Cita", "fr": "Rendez-vous", "de": "Termin",
                          "pt": "Agendamento"},
    Written.BOOKED_BY_PHONE: {
        "en": "Booked by phone.", "es": "Reservado por teléfono.", "fr": "Réservé par téléphone.",
        "de": "Telefonisch gebucht.", "pt": "Agendado por telefone.",
    },
    Written.RESCHEDULED_BY_PHONE: {
        "en": "Rescheduled by phone.", "es": "Cambiado por teléfono.", "fr": "Déplacé par téléphone.",
        "de": "Telefonisch verschoben.", "pt": "Remarcado por telefone.",
    },
    Written.CANCELLED_BY_PHONE: {
        "en": "Cancelled by phone.", "es": "Cancelado por teléfono.", "fr": "Annulé par téléphone.",
        "de": "Telefonisch storniert.", "pt": "Cancelado pelo telefone.",
    },
    Written.NOTHING_BOOKED: {
        "en": "Nothing: it is in your appointments.",
        "es": "Nada: ya está en sus citas.",
        "fr": "Rien : c'est dans vos rendez-vous.",
        "de": "Nichts: Er steht in Ihren Terminen.",
        "pt": "Nada: já está na sua agenda.",
    },
    Written.NOTHING_FREE: {
        "en": "Nothing: the time is free again.",
        "es": "Nada: el horario vuelve a estar libre.",
        "fr": "Rien : le créneau est de nouveau libre.",
        "de": "Nichts: Die Zeit ist wieder frei.",
        "pt": "Nada: o horário está livre de novo.",
    },
    Written.UNREACHED: {
        "en": "The receptionist could not reach {name}",
        "es": "La recepcionista no pudo contactar a {name}",
        "fr": "La réceptionniste n'a pas pu joindre {name}",
        "de": "Die Rezeption konnte {name} nicht erreichen",
        "pt": "A recepcionista não conseguiu falar com {name}",
    },
    Written.UNREACHED_CONFIRMATION: {
        "en": "The confirmation call did not happen: {reason}.",
        "es": "La llamada de confirmación no se hizo: {reason}.",
        "fr": "L'appel de confirmation n'a pas eu lieu : {reason}.",
        "de": "Der Bestätigungsanruf fand nicht statt: {reason}.",
        "pt": "A ligação de confirmação não aconteceu: {reason}.",
    },
    Written.UNREACHED_CONFIRMATION_ABOUT: {
        "en": "The confirmation call about {purpose} did not happen: {reason}.",
        "es": "La llamada de confirmación sobre {purpose} no se hizo: {reason}.",
        "fr": "L'appel de confirmation au sujet de {purpose} n'a pas eu lieu : {reason}.",
        "de": "Der Bestätigungsanruf wegen {purpose} fand nicht statt: {reason}.",
        "pt": "A ligação de confirmação sobre {purpose} não aconteceu: {reason}.",
    },
    Written.UNREACHED_CALLBACK: {
        "en": "The callback did not happen: {reason}.",
        "es": "La devolución de llamada no se hizo: {reason}.",
        "fr": "Le rappel n'a pas eu lieu : {reason}.",
        "de": "Der Rückruf fand nicht statt: {reason}.",
        "pt": "O retorno da ligação não aconteceu: {reason}.",
    },
    Written.UNREACHED_CALLBACK_ABOUT: {
        "en": "The callback about {purpose} did not happen: {reason}.",
        "es": "La devolución de llamada sobre {purpose} no se hizo: {reason}.",
        "fr": "Le rappel au sujet de {purpose} n'a pas eu lieu : {reason}.",
        "de": "Der Rückruf wegen {purpose} fand nicht statt: {reason}.",
        "pt": "O retorno da ligação sobre {purpose} não aconteceu: {reason}.",
    },
    Written.CALL_YOURSELF: {
        "en": "Call {name} yourself on {phone}.",
        "es": "Llame usted a {name} al {phone}.",
        "fr": "Appelez vous-même {name} au {phone}.",
        "de": "Rufen Sie {name} selbst unter {phone} an.",
        "pt": "Ligue você mesmo para {name} no {phone}.",
    },
    Written.SEE_CALLS_OUT: {
        "en": "See Calls out for details.",
        "es": "Vea Llamadas salientes para más detalles.",
        "fr": "Voir Appels sortants pour les détails.",
        "de": "Details unter Ausgehende Anrufe.",
        "pt": "Veja Chamadas feitas para mais detalhes.",
    },
    Written.REASON_NO_ANSWER: {"en": "no answer", "es": "sin respuesta", "fr": "pas de réponse",
                               "de": "keine Antwort", "pt": "sem resposta"},
    Written.REASON_OPTED_OUT: {
        "en": "the customer asked not to be called",
        "es": "el cliente pidió que no lo llamen",
        "fr": "le client a demandé à ne pas être appelé",
        "de": "der Kunde möchte nicht angerufen werden",
        "pt": "o cliente pediu para não receber ligações",
    },
    Written.REASON_NOT_ON_RECORD: {
        "en": "the number is not the customer's number on record",
        "es": "el número no es el que consta para el cliente",
        "fr": "le numéro n'est pas celui enregistré pour le client",
        "de": "die Nummer ist nicht die gespeicherte Nummer des Kunden",
        "pt": "o número não é o cadastrado para o cliente",
    },
    Written.REASON_NO_BUSINESS_NUMBER: {
        "en": "the business has no phone number to call from",
        "es": "el negocio no tiene un número desde el que llamar",
        "fr": "l'entreprise n'a pas de numéro d'où appeler",
        "de": "das Unternehmen hat keine Nummer, von der aus es anrufen kann",
        "pt": "a empresa não tem um número para fazer a ligação",
    },
    Written.REASON_MINUTES_USED: {
        "en": "your plan's minutes are used up",
        "es": "se agotaron los minutos de su plan",
        "fr": "les minutes de votre forfait sont épuisées",
        "de": "die Minuten Ihres Tarifs sind aufgebraucht",
        "pt": "os minutos do seu plano acabaram",
    },
    Written.REASON_NOT_REACHED: {
        "en": "not reached after {attempts} attempts ({outcome})",
        "es": "sin contacto tras {attempts} intentos ({outcome})",
        "fr": "injoignable après {attempts} tentatives ({outcome})",
        "de": "nach {attempts} Versuchen nicht erreicht ({outcome})",
        "pt": "sem contato após {attempts} tentativas ({outcome})",
    },
    Written.REASON_CANT_CALL: {
        "en": "the number can't be called: {detail}",
        "es": "no se puede llamar al número: {detail}",
        "fr": "le numéro ne peut pas être appelé : {detail}",
        "de": "die Nummer kann nicht angerufen werden: {detail}",
        "pt": "não é possível ligar para o número: {detail}",
    },
    Written.REASON_TWILIO_REFUSED: {
        "en": "Twilio refused the call: {detail}",
        "es": "Twilio rechazó la llamada: {detail}",
        "fr": "Twilio a refusé l'appel : {detail}",
        "de": "Twilio hat den Anruf abgelehnt: {detail}",
        "pt": "a Twilio recusou a ligação: {detail}",
    },
    Written.ATTEMPT_NO_ANSWER: {"en": "no answer", "es": "no contestó", "fr": "sans réponse",
                                "de": "nicht abgenommen", "pt": "não atendeu"},
    Written.ATTEMPT_BUSY: {"en": "busy", "es": "ocupado", "fr": "occupé", "de": "besetzt", "pt": "linha ocupada"},
    Written.ATTEMPT_FAILED: {"en": "failed", "es": "falló", "fr": "échec", "de": "fehlgeschlagen",
                             "pt": "falhou"},
    Written.DIGEST_HEAD: {
        "en": "Your day: {calls}, {bookings}",
        "es": "Su día: {calls}, {bookings}",
        "fr": "Votre journée : {calls}, {bookings}",
        "de": "Ihr Tag: {calls}, {bookings}",
        "pt": "Seu dia: {calls}, {bookings}",
    },
    Written.READ_MESSAGES: {
        "en": "Read your messages.", "es": "Lea sus mensajes.", "fr": "Lisez vos messages.",
        "de": "Lesen Sie Ihre Nachrichten.", "pt": "Leia seus recados.",
    },
    Written.NOTHING_WAITING: {
        "en": "Nothing waiting.", "es": "Nada pendiente.", "fr": "Rien en attente.", "de": "Nichts offen.",
        "pt": "Nada pendente.",
    },
    Written.UNREAD_HEADING: {
        "en": "Unread messages:", "es": "Mensajes sin leer:", "fr": "Messages non lus :",
        "de": "Ungelesene Nachrichten:", "pt": "Recados não lidos:",
    },
    Written.TEST_HEAD: {
        "en": "Test notification", "es": "Notificación de prueba", "fr": "Notification de test",
        "de": "Testbenachrichtigung", "pt": "Notificação de teste",
    },
    Written.TEST_SUMMARY: {
        "en": "Notifications from {business}'s receptionist reach you here.",
        "es": "Las notificaciones de la recepcionista de {business} le llegan aquí.",
        "fr": "Les notifications de la réceptionniste de {business} vous parviennent ici.",
        "de": "Benachrichtigungen der Rezeption von {business} erreichen Sie hier.",
        "pt": "As notificações da recepcionista de {business} chegam até você aqui.",
    },
    Written.TEST_TODO: {
        "en": "Nothing: this was a test.", "es": "Nada: era una prueba.", "fr": "Rien : c'était un test.",
        "de": "Nichts: Das war ein Test.", "pt": "Nada: era um teste.",
    },
    Written.CALLER_LINE: {
        "en": "Caller: {who}", "es": "Llamada de: {who}", "fr": "Appelant : {who}", "de": "Anrufer: {who}",
        "pt": "Quem ligou: {who}",
    },
    Written.LANGUAGE_LINE: {
        "en": "Language: {language}", "es": "Idioma: {language}", "fr": "Langue : {language}",
        "de": "Sprache: {language}", "pt": "Língua: {language}",
    },
    Written.WHAT_TO_DO: {
        "en": "What to do: {todo}", "es": "Qué hacer: {todo}", "fr": "À faire : {todo}",
        "de": "Zu tun: {todo}", "pt": "O que fazer: {todo}",
    },
    Written.CALL_LINK: {
        "en": "Call: {link}", "es": "Llamada: {link}", "fr": "Appel : {link}", "de": "Anruf: {link}",
        "pt": "Chamada: {link}",
    },
    Written.OPEN_LINK: {
        "en": "Open: {link}", "es": "Abrir: {link}", "fr": "Ouvrir : {link}", "de": "Öffnen: {link}",
        "pt": "Acessar: {link}",
    },
    Written.PLAN_FALLBACK: {"en": "your plan", "es": "actual", "fr": "actuel", "de": "aktuell", "pt": "atual"},
    Written.FORWARDED_TO: {
        "en": "forwarded to your transfer number {phone}",
        "es": "desviadas a su número de transferencia {phone}",
        "fr": "transférés vers votre numéro de transfert {phone}",
        "de": "an Ihre Weiterleitungsnummer {phone} weitergeleitet",
        "pt": "encaminhadas para o seu número de transferência {phone}",
    },
    Written.TO_VOICEMAIL: {
        "en": "sent to voicemail (set a transfer number in Settings to have them forwarded to you)",
        "es": "enviadas al buzón de voz (configure un número de transferencia en Configuración para recibirlas)",
        "fr": "envoyés vers la messagerie (indiquez un numéro de transfert dans Paramètres pour les recevoir)",
        "de": "an die Mailbox geleitet (hinterlegen Sie in den Einstellungen eine Weiterleitungsnummer, um sie "
              "selbst anzunehmen)",
        "pt": "enviadas para a caixa postal (defina um número de transferência em Configurações para recebê-las)",
    },
    Written.RENEWS: {
        "en": " Your minutes renew on {date}.",
        "es": " Sus minutos se renuevan el {date}.",
        "fr": " Vos minutes se renouvellent le {date}.",
        "de": " Ihre Minuten werden am {date} erneuert.",
        "pt": " Seus minutos renovam em {date}.",
    },
    Written.ALL_USED: {
        "en": "All {included} included minutes of your {plan} plan are used",
        "es": "Se usaron los {included} minutos incluidos en su plan {plan}",
        "fr": "Les {included} minutes incluses dans votre forfait {plan} sont utilisées",
        "de": "Alle {included} Inklusivminuten Ihres Tarifs {plan} sind verbraucht",
        "pt": "Os {included} minutos incluídos no seu plano {plan} foram usados",
    },
    Written.STILL_ANSWERED_BILLED: {
        "en": "Calls are still answered by the receptionist; every further minute is billed as overage.{renews}",
        "es": "La recepcionista sigue atendiendo las llamadas; cada minuto adicional se factura como "
              "excedente.{renews}",
        "fr": "La réceptionniste continue de répondre ; chaque minute supplémentaire est facturée en "
              "dépassement.{renews}",
        "de": "Die Rezeption nimmt weiter Anrufe an; jede weitere Minute wird als Mehrverbrauch "
              "berechnet.{renews}",
        "pt": "A recepcionista continua atendendo; cada minuto adicional é cobrado como excedente.{renews}",
    },
    Written.NOTHING_BIGGER: {
        "en": "Nothing, unless you want a bigger plan: see Billing.",
        "es": "Nada, salvo que quiera un plan mayor: vea Facturación.",
        "fr": "Rien, sauf si vous voulez un forfait plus grand : voir Facturation.",
        "de": "Nichts, außer Sie möchten einen größeren Tarif: siehe Abrechnung.",
        "pt": "Nada, a menos que queira um plano maior: veja Cobrança.",
    },
    Written.FROM_NOW: {
        "en": "From now on calls are {fallback} instead of answered by the receptionist.{renews}",
        "es": "A partir de ahora, las llamadas son {fallback} en lugar de atendidas por la recepcionista.{renews}",
        "fr": "Désormais, les appels sont {fallback} au lieu d'être pris par la réceptionniste.{renews}",
        "de": "Ab jetzt werden Anrufe {fallback}, statt von der Rezeption angenommen zu werden.{renews}",
        "pt": "A partir de agora, as chamadas são {fallback} em vez de atendidas pela recepcionista.{renews}",
    },
    Written.UPGRADE_AGAIN: {
        "en": "Upgrade on the Billing page to have the receptionist answer again.",
        "es": "Cambie de plan en Facturación para que la recepcionista vuelva a atender.",
        "fr": "Passez à un forfait supérieur dans Facturation pour que la réceptionniste réponde à nouveau.",
        "de": "Wechseln Sie unter Abrechnung in einen größeren Tarif, damit die Rezeption wieder annimmt.",
        "pt": "Mude de plano em Cobrança para a recepcionista voltar a atender.",
    },
    Written.USED_SHARE: {
        "en": "You have used {threshold} % of your {plan} plan's minutes ({used} of {included})",
        "es": "Ha usado el {threshold} % de los minutos de su plan {plan} ({used} de {included})",
        "fr": "Vous avez utilisé {threshold} % des minutes de votre forfait {plan} ({used} sur {included})",
        "de": "Sie haben {threshold} % der Minuten Ihres Tarifs {plan} verbraucht ({used} von {included})",
        "pt": "Você usou {threshold}% dos minutos do seu plano {plan} ({used} de {included})",
    },
    Written.OVERAGE_LATER: {
        "en": "When they run out, calls are still answered and extra minutes are billed as overage.{renews}",
        "es": "Cuando se agoten, las llamadas se seguirán atendiendo y los minutos extra se facturarán como "
              "excedente.{renews}",
        "fr": "Une fois épuisées, les appels restent pris et les minutes en plus sont facturées en "
              "dépassement.{renews}",
        "de": "Sind sie aufgebraucht, werden Anrufe weiter angenommen und zusätzliche Minuten als Mehrverbrauch "
              "berechnet.{renews}",
        "pt": "Quando acabarem, as chamadas continuam sendo atendidas e os minutos extras são cobrados como "
              "excedente.{renews}",
    },
    Written.FALLBACK_LATER: {
        "en": "When they run out, calls will be {fallback} instead of answered by the receptionist.{renews}",
        "es": "Cuando se agoten, las llamadas serán {fallback} en lugar de atendidas por la recepcionista."
              "{renews}",
        "fr": "Une fois épuisées, les appels seront {fallback} au lieu d'être pris par la réceptionniste.{renews}",
        "de": "Sind sie aufgebraucht, werden Anrufe {fallback}, statt von der Rezeption angenommen zu werden."
              "{renews}",
        "pt": "Quando acabarem, as chamadas serão {fallback} em vez de atendidas pela recepcionista.{renews}",
    },
    Written.UPGRADE_KEEP: {
        "en": "Upgrade on the Billing page to keep the receptionist answering.",
        "es": "Cambie de plan en Facturación para que la recepcionista siga atendiendo.",
        "fr": "Passez à un forfait supérieur dans Facturation pour que la réceptionniste continue de répondre.",
        "de": "Wechseln Sie unter Abrechnung in einen größeren Tarif, damit die Rezeption weiter annimmt.",
        "pt": "Mude de plano em Cobrança para a recepcionista continuar atendendo.",
    },
    Written.YOUR_SERVICE: {
        "en": "your {service}", "es": "su cita de {service}", "fr": "votre rendez-vous ({service})",
        "de": "Ihr Termin ({service})", "pt": "seu agendamento de {service}",
    },
    Written.YOUR_APPOINTMENT: {
        "en": "your appointment", "es": "su cita", "fr": "votre rendez-vous", "de": "Ihr Termin",
        "pt": "seu agendamento",
    },
    Written.CONFIRM_BOOKED: {
        "en": "{business}: {your_service} is booked for {when}.",
        "es": "{business}: {your_service} está reservada para el {when}.",
        "fr": "{business} : {your_service} est réservé pour le {when}.",
        "de": "{business}: {your_service} ist für {when} gebucht.",
        "pt": "{business}: {your_service} está marcado para {when}.",
    },
    Written.CONFIRM_RESCHEDULED: {
        "en": "{business}: {your_service} has moved to {when}.",
        "es": "{business}: {your_service} se cambió al {when}.",
        "fr": "{business} : {your_service} est déplacé au {when}.",
        "de": "{business}: {your_service} wurde auf {when} verschoben.",
        "pt": "{business}: {your_service} foi remarcado para {when}.",
    },
    Written.CONFIRM_CANCELLED: {
        "en": "{business}: {your_service} on {when} is cancelled.",
        "es": "{business}: {your_service} del {when} está cancelada.",
        "fr": "{business} : {your_service} du {when} est annulé.",
        "de": "{business}: {your_service} am {when} wurde storniert.",
        "pt": "{business}: {your_service} de {when} foi cancelado.",
    },
    Written.REMINDER: {
        "en": "Reminder from {business}: {your_service} is tomorrow, {when}.",
        "es": "Recordatorio de {business}: {your_service} es mañana, {when}.",
        "fr": "Rappel de {business} : {your_service} est demain, {when}.",
        "de": "Erinnerung von {business}: {your_service} ist morgen, {when}.",
        "pt": "Lembrete de {business}: {your_service} é amanhã, {when}.",
    },
    Written.TO_CHANGE: {
        "en": " To change or cancel it, call {number}.",
        "es": " Para cambiarla o cancelarla, llame al {number}.",
        "fr": " Pour le modifier ou l'annuler, appelez le {number}.",
        "de": " Zum Ändern oder Absagen rufen Sie {number} an.",
        "pt": " Para alterar ou cancelar, ligue para {number}.",
    },
    Written.TO_BOOK_AGAIN: {
        "en": " To book again, call {number}.",
        "es": " Para reservar de nuevo, llame al {number}.",
        "fr": " Pour reprendre rendez-vous, appelez le {number}.",
        "de": " Für einen neuen Termin rufen Sie {number} an.",
        "pt": " Para agendar de novo, ligue para {number}.",
    },
    # STOP stays English in every language: it is the keyword Twilio's opt-out handling recognises.
    Written.OPT_OUT: {
        "en": " Reply STOP to opt out.",
        "es": " Responda STOP para no recibir más mensajes.",
        "fr": " Répondez STOP pour ne plus recevoir de messages.",
        "de": " Antworten Sie STOP, um keine Nachrichten mehr zu erhalten.",
        "pt": " Responda STOP para não receber mais mensagens.",
    },
}

#: counted words -> base language -> (one, other); {n} is the number
COUNTED: dict[Counted, dict[str, tuple[str, str]]] = {
    Counted.CALLS: {
        "en": ("{n} call", "{n} calls"), "es": ("{n} llamada", "{n} llamadas"), "fr": ("{n} appel", "{n} appels"),
        "de": ("{n} Anruf", "{n} Anrufe"), "pt": ("{n} chamada", "{n} chamadas"),
    },
    Counted.NEW_BOOKINGS: {
        "en": ("{n} new booking", "{n} new bookings"),
        "es": ("{n} reserva nueva", "{n} reservas nuevas"),
        "fr": ("{n} nouvelle réservation", "{n} nouvelles réservations"),
        "de": ("{n} neue Buchung", "{n} neue Buchungen"),
        "pt": ("{n} novo agendamento", "{n} novos agendamentos"),
    },
    Counted.UNREAD_MESSAGES: {
        "en": ("{n} unread message", "{n} unread messages"),
        "es": ("{n} mensaje sin leer", "{n} mensajes sin leer"),
        "fr": ("{n} message non lu", "{n} messages non lus"),
        "de": ("{n} ungelesene Nachricht", "{n} ungelesene Nachrichten"),
        "pt": ("{n} recado não lido", "{n} recados não lidos"),
    },
    Counted.CALLS_TO_FOLLOW_UP: {
        "en": ("{n} call to follow up", "{n} calls to follow up"),
        "es": ("{n} llamada pendiente", "{n} llamadas pendientes"),
        "fr": ("{n} appel à suivre", "{n} appels à suivre"),
        "de": ("{n} Anruf zu erledigen", "{n} Anrufe zu erledigen"),
        "pt": ("{n} chamada pendente", "{n} chamadas pendentes"),
    },
    Counted.CANCELLATIONS: {
        "en": ("{n} cancellation", "{n} cancellations"),
        "es": ("{n} cancelación", "{n} cancelaciones"),
        "fr": ("{n} annulation", "{n} annulations"),
        "de": ("{n} Stornierung", "{n} Stornierungen"),
        "pt": ("{n} cancelamento", "{n} cancelamentos"),
    },
}

#: outcome code (app.inbox.outcomes) -> base language -> label, in the order the owner sees them
OUTCOME_LABELS: dict[str, dict[str, str]] = {
    "failed": {"en": "Call failed", "es": "Llamada fallida", "fr": "Appel échoué", "de": "Anruf fehlgeschlagen",
               "pt": "Chamada com falha"},
    "transfer_failed": {"en": "Transfer failed", "es": "Transferencia fallida", "fr": "Transfert échoué",
                        "de": "Weiterleitung fehlgeschlagen", "pt": "Transferência com falha"},
    "callback_requested": {"en": "Wants a call back", "es": "Quiere que le llamen", "fr": "Souhaite être rappelé",
                           "de": "Möchte Rückruf", "pt": "Quer retorno"},
    "message_taken": {"en": "Message taken", "es": "Mensaje tomado", "fr": "Message pris",
                      "de": "Nachricht aufgenommen", "pt": "Recado anotado"},
    "booked": {"en": "Booked", "es": "Reservado", "fr": "Réservé", "de": "Gebucht", "pt": "Agendado"},
    "rescheduled": {"en": "Rescheduled", "es": "Cambiado de hora", "fr": "Déplacé", "de": "Verschoben",
                    "pt": "Remarcado"},
    "cancelled": {"en": "Cancelled", "es": "Anulado", "fr": "Annulé", "de": "Storniert", "pt": "Cancelado"},
    "transferred": {"en": "Transferred", "es": "Transferido", "fr": "Transféré", "de": "Weitergeleitet",
                    "pt": "Transferida"},
    "question_answered": {"en": "Question answered", "es": "Pregunta respondida", "fr": "Question répondue",
                          "de": "Frage beantwortet", "pt": "Dúvida respondida"},
    "hung_up_early": {"en": "Hung up early", "es": "Colgó pronto", "fr": "A raccroché tôt", "de": "Früh aufgelegt",
                      "pt": "Desligou cedo"},
}

#: `Call.end_reason` code -> base language -> why the call ended, in the owner's words
END_REASONS: dict[str, dict[str, str]] = {
    "goodbye": {"en": "said goodbye", "es": "se despidió", "fr": "a dit au revoir", "de": "hat sich verabschiedet",
                "pt": "se despediu"},
    **{code: {"en": "the caller hung up", "es": "la persona colgó", "fr": "l'appelant a raccroché",
              "de": "der Anrufer hat aufgelegt", "pt": "a pessoa desligou"}
       for code in ("caller_hung_up", "caller_gone", "caller_stop")},
    "transferred": {"en": "transferred to a person", "es": "transferida a una persona",
                    "fr": "transféré à une personne", "de": "an eine Person weitergeleitet",
                    "pt": "transferida para uma pessoa"},
    "shutdown": {"en": "the service restarted", "es": "el servicio se reinició", "fr": "le service a redémarré",
                 "de": "der Dienst wurde neu gestartet", "pt": "o serviço reiniciou"},
    "interrupted": {"en": "cut off (the service stopped)", "es": "cortada (el servicio se detuvo)",
                    "fr": "coupé (le service s'est arrêté)", "de": "abgebrochen (der Dienst wurde gestoppt)",
                    "pt": "interrompida (o serviço parou)"},
    "error": {"en": "an error ended the call", "es": "un error terminó la llamada",
              "fr": "une erreur a mis fin à l'appel", "de": "ein Fehler hat den Anruf beendet",
              "pt": "um erro encerrou a chamada"},
    "openai_unavailable": {"en": "the receptionist could not be reached",
                           "es": "no se pudo contactar a la recepcionista",
                           "fr": "la réceptionniste était injoignable", "de": "die Rezeption war nicht erreichbar",
                           "pt": "não foi possível acessar a recepcionista"},
    "realtime_closed": {"en": "the receptionist's connection dropped",
                        "es": "se cortó la conexión de la recepcionista",
                        "fr": "la connexion de la réceptionniste a été coupée",
                        "de": "die Verbindung der Rezeption brach ab", "pt": "a conexão da recepcionista caiu"},
    "realtime_session_expired": {"en": "the call reached the one-hour limit",
                                 "es": "la llamada llegó al límite de una hora",
                                 "fr": "l'appel a atteint la limite d'une heure",
                                 "de": "der Anruf erreichte das Limit von einer Stunde",
                                 "pt": "a chamada atingiu o limite de uma hora"},
    "max_duration": {"en": "the call reached its time limit", "es": "la llamada llegó a su tiempo máximo",
                     "fr": "l'appel a atteint sa durée maximale", "de": "der Anruf erreichte seine Höchstdauer",
                     "pt": "a chamada atingiu o tempo máximo"},
    "silence": {"en": "the caller stayed silent", "es": "la persona no habló", "fr": "l'appelant est resté silencieux",
                "de": "der Anrufer blieb stumm", "pt": "a pessoa ficou em silêncio"},
    **{code: {"en": "the caller hung up before it was answered", "es": "la persona colgó antes de que se contestara",
              "fr": "l'appelant a raccroché avant la réponse", "de": "der Anrufer legte vor der Annahme auf",
              "pt": "a pessoa desligou antes de ser atendida"}
       for code in ("twilio_completed", "twilio_canceled")},
    "twilio_busy": {"en": "the line was busy", "es": "la línea estaba ocupada", "fr": "la ligne était occupée",
                    "de": "die Leitung war besetzt", "pt": "a linha estava ocupada"},
    "twilio_no_answer": {"en": "nobody answered", "es": "nadie contestó", "fr": "personne n'a répondu",
                         "de": "niemand hat abgenommen", "pt": "ninguém atendeu"},
    "twilio_failed": {"en": "the call could not be connected", "es": "no se pudo conectar la llamada",
                      "fr": "l'appel n'a pas pu être établi", "de": "der Anruf konnte nicht verbunden werden",
                      "pt": "não foi possível completar a chamada"},
    "limit_reached_forwarded": {"en": "forwarded to you: the plan's minutes are used up",
                                "es": "desviada a usted: se agotaron los minutos del plan",
                                "fr": "transféré vers vous : les minutes du forfait sont épuisées",
                                "de": "an Sie weitergeleitet: die Minuten des Tarifs sind aufgebraucht",
                                "pt": "encaminhada para você: os minutos do plano acabaram"},
    "limit_reached_voicemail": {"en": "sent to voicemail: the plan's minutes are used up",
                                "es": "enviada al buzón de voz: se agotaron los minutos del plan",
                                "fr": "envoyé à la messagerie : les minutes du forfait sont épuisées",
                                "de": "an die Mailbox geleitet: die Minuten des Tarifs sind aufgebraucht",
                                "pt": "enviada para a caixa postal: os minutos do plano acabaram"},
}

#: base languages every written line exists in (the same as the spoken catalogue's; a test checks both)
CATALOGUE_LANGUAGES = ("en", "es", "fr", "de", "pt")


def text(line: Written, language: str | Language | None, /, **values: object) -> str:
    """The words of `line` in `language` (a BCP-47 code or Language; unknown: the default language)."""
    lang = get(language)
    words = CATALOGUE[line].get(lang.base) or CATALOGUE[line]["en"]
    return words.format(**values) if values else words


def number(value: float, language: str | Language | None) -> str:
    """A count or a number of minutes as the language writes it ("12.5" / "12,5"). English keeps Python's
    plain form ("1000", not "1,000"), as its texts always had."""
    lang = get(language)
    if lang.base == "en":
        return f"{value:g}"
    return str(format_decimal(value, locale=lang.babel))


def counted(what: Counted, n: int, language: str | Language | None) -> str:
    """"1 call" / "2 calls" / "0 appel": the form CLDR's plural rules pick for `n` in `language`."""
    lang = get(language)
    one, other = COUNTED[what].get(lang.base) or COUNTED[what]["en"]
    form = one if lang.babel.plural_form(n) == "one" else other
    return form.format(n=number(n, lang))


def outcome_label(code: str, language: str | Language | None) -> str:
    words = OUTCOME_LABELS[code]
    return words.get(get(language).base) or words["en"]


def end_reason(code: str, language: str | Language | None) -> str | None:
    """Why a call ended in the owner's words, or None for a code the table doesn't know."""
    words = END_REASONS.get(code)
    if words is None:
        return None
    return words.get(get(language).base) or words["en"]

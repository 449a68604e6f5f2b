"""The admin account list's row template as Jinja, the reference the rows written in Python
(views/admin/account_rows.py) are compared with: tests/test_admin_rows.py and
tests/test_admin_fast_list.py."""

#: The row template as ``mailconnect/admin/accounts.html`` had it before the rows moved to Python.
JINJA_ROWS = """
{%- set t_account, t_owner, t_provider, t_status = _mc("Account"), _mc("Owner"), _mc("Provider"), _mc("Status") %}
{%- set t_inactive, t_inactive_title = _mc("Inactive"), _mc("Deactivated by an administrator: kept, but not used for sending") %}
{%- set t_deactivate, t_reactivate, t_disconnect = _mc("Deactivate"), _mc("Reactivate"), _mc("Disconnect") %}
{%- set acc, deact, react, disc = links.account, links.deactivate, links.reactivate, links.disconnect %}
{%- for account in accounts %}{% set kind, ident = account.owner_kind, account.owner_id %}{% set found = provider_names[account.provider] %}
  <tr data-account-id="{{ account.id }}"{% if not account.active %} class="mc-row--inactive"{% endif %}>
    <td data-label="{{ t_account }}"><a class="mc-strong" href="{{ acc.head }}{{ account.id }}{{ acc.tail }}">{{ account.email }}</a>{% if account.display_name %}<br><span class="mc-muted">{{ account.display_name }}</span>{% endif %}</td>
    <td data-label="{{ t_owner }}">{% if kind == "user" %}<a href="{{ person_urls[ident] }}">{{ owner_labels[(kind, ident)] }}</a>{% else %}{{ owner_labels[(kind, ident)] }}{% endif %}{% if kind != "organization" %}<br><span class="mc-muted">{{ kind_names[kind] or kind }}</span>{% endif %}</td>
    <td data-label="{{ t_provider }}">{{ provider_titles[found.key] if found else account.provider }}</td>
    <td data-label="{{ t_status }}"><span class="mc-badge mc-badge--{{ account.status.replace('_', '-') }}"><span class="mc-badge-dot" aria-hidden="true"></span>{{ status_labels[account.status] or account.status.replace('_', ' ')|capitalize }}</span>{% if not account.active %} <span class="mc-badge mc-badge--inactive" title="{{ t_inactive_title }}">{{ t_inactive }}</span>{% endif %}</td>
    <td class="mc-row-actions">
      <form method="post" action="{% if account.active %}{{ deact.head }}{{ account.id }}{{ deact.tail }}{% else %}{{ react.head }}{{ account.id }}{{ react.tail }}{% endif %}" class="mc-inline-form">
        {{ csrf_field }}<input type="hidden" name="next" value="{{ back }}">
        <button type="submit" class="mc-btn mc-btn--secondary mc-btn--small">{{ t_deactivate if account.active else t_reactivate }}<span class="mc-sr"> {{ account.email }}</span></button>
      </form>
      <a class="mc-btn mc-btn--danger-ghost mc-btn--small" href="{{ disc.head }}{{ account.id }}{{ disc.tail }}">{{ t_disconnect }}<span class="mc-sr"> {{ account.email }}</span></a>
    </td>
  </tr>
  {% endfor %}"""  # noqa: E501

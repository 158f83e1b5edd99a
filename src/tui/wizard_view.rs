//! Drawing the setup form: the three steps' fields, each with its answer (or its default,
//! dimmed), a one-line explanation and, once left, its problem; then the summary of what will
//! be written; then what was saved and the lines for the bastion.

use ratatui::Frame;
use ratatui::layout::{Margin, Rect};
use ratatui::style::Style;
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Paragraph};

use super::app::App;
use super::fit::{fit, width, wrap};
use super::theme::Theme;
use super::wizard::{ENGINES, FIELDS, Field, KEY_KINDS, STEPS, Stage, Wizard};

const LABEL: usize = 12;

pub fn render(app: &App, f: &mut Frame, theme: Theme) {
    let w = &app.wizard;
    let area = if f.area().width >= 100 && f.area().height >= 30 {
        f.area().inner(Margin {
            horizontal: 2,
            vertical: 1,
        })
    } else {
        f.area()
    };
    super::view::backdrop(f, area);
    let title = match (w.step(), &w.stage) {
        (Some(step), _) => format!(
            " set up a connection · step {step} of {}: {} ",
            STEPS.len(),
            STEPS[step - 1]
        ),
        (None, Stage::Done { .. }) => " set up a connection · saved: the bastion's side ".into(),
        (None, _) => " set up a connection · check, then write ".into(),
    };
    let block = Block::default()
        .borders(Borders::ALL)
        .title(fit(&title, usize::from(area.width.saturating_sub(2))).into_owned())
        .border_style(theme.accent());
    let inner = block.inner(area);
    f.render_widget(block, area);
    let tw = usize::from(inner.width).saturating_sub(1);
    let (lines, focus_line) = match &w.stage {
        Stage::Form => form(w, theme, tw),
        Stage::Checking => (vec![Line::from("checking the answers...")], 0),
        Stage::Saving => (vec![Line::from("writing...")], 0),
        Stage::Review(summary) => {
            let mut l = vec![Line::styled(
                fit("This will be written (nothing is yet):", tw).into_owned(),
                theme.strong(),
            )];
            for s in summary {
                for (n, part) in wrap(s, tw.saturating_sub(2), 0).into_iter().enumerate() {
                    let head = if n == 0 { "• " } else { "  " };
                    l.push(Line::from(format!("{head}{part}")));
                }
            }
            (l, 0)
        }
        Stage::Done { saved, said } => {
            let mut l = vec![Line::styled(
                fit(&format!("saved '{}'. On the bastion:", saved.name), tw).into_owned(),
                theme.up(),
            )];
            if let Some(said) = said {
                l.extend(
                    wrap(said, tw, 2)
                        .into_iter()
                        .map(|t| Line::styled(t, theme.strong())),
                );
            }
            // A long line goes on at the left edge (no indent), so a copy from the terminal
            // loses only the line breaks; `c` and `w` give it whole.
            for t in saved.text.lines() {
                l.extend(wrap(t, tw, 0).into_iter().map(Line::from));
            }
            let focus = w.scroll.min(l.len().saturating_sub(1));
            (l, focus)
        }
    };
    // The footer keeps the last line; the rest scrolls to keep the focus in view.
    let body_h = usize::from(inner.height.saturating_sub(1));
    let skip = match w.stage {
        Stage::Done { .. } => focus_line.min(lines.len().saturating_sub(body_h)),
        _ => focus_line.saturating_sub(body_h.saturating_sub(3)),
    };
    f.render_widget(
        Paragraph::new(
            lines
                .into_iter()
                .skip(skip)
                .take(body_h)
                .collect::<Vec<_>>(),
        ),
        Rect {
            height: inner.height.saturating_sub(1),
            ..inner
        },
    );
    f.render_widget(
        Line::styled(fit(w.footer(), tw).into_owned(), theme.dim()),
        Rect {
            y: inner.bottom().saturating_sub(1),
            height: inner.height.min(1),
            ..inner
        },
    );
}

/// The form's lines and the line of the focused field.
fn form(w: &Wizard, theme: Theme, tw: usize) -> (Vec<Line<'static>>, usize) {
    let mut lines: Vec<Line> = Vec::new();
    let mut focus_line = 0;
    let shown = w.fields();
    let mut last_step = 0;
    let vw = tw.saturating_sub(LABEL + 2);
    for (field, step, label, help) in FIELDS {
        if !shown.contains(&field) {
            continue;
        }
        if step != last_step {
            if last_step != 0 {
                lines.push(Line::from(""));
            }
            lines.push(Line::styled(
                fit(&format!("{step} {}", STEPS[usize::from(step) - 1]), tw).into_owned(),
                theme.header(),
            ));
            last_step = step;
        }
        let focused = w.focus == field;
        if focused {
            focus_line = lines.len();
        }
        let marker = if focused { "› " } else { "  " };
        let label_style = if focused {
            theme.focus()
        } else {
            Style::default()
        };
        let mut spans = vec![
            Span::styled(marker.to_string(), theme.accent()),
            Span::styled(format!("{:<LABEL$}", label), label_style),
        ];
        spans.extend(value(w, field, focused, theme, vw));
        lines.push(Line::from(spans));
        let pad = " ".repeat(LABEL + 2);
        lines.push(Line::styled(format!("{pad}{}", fit(help, vw)), theme.dim()));
        let problem = w
            .failure
            .as_ref()
            .filter(|f| f.field == Some(field))
            .map(|f| f.message.clone())
            .or_else(|| {
                w.visited
                    .contains(&field)
                    .then(|| w.problem(field))
                    .flatten()
            });
        if let Some(p) = problem {
            for l in wrap(&format!("✘ {p}"), vw, 2) {
                lines.push(Line::styled(format!("{pad}{l}"), theme.failed()));
            }
        }
    }
    if let Some(f) = w.failure.as_ref().filter(|f| f.field.is_none()) {
        lines.push(Line::from(""));
        for l in wrap(&format!("✘ {}", f.message), tw, 2) {
            lines.push(Line::styled(l, theme.failed()));
        }
    }
    lines.push(Line::from(""));
    lines.push(Line::styled(
        fit(
            "Enter on the last field checks every answer and shows what will be written.",
            tw,
        )
        .into_owned(),
        theme.dim(),
    ));
    (lines, focus_line)
}

/// A field's value: the choices of a list, or the text with the cursor, else its default.
fn value(w: &Wizard, field: Field, focused: bool, theme: Theme, vw: usize) -> Vec<Span<'static>> {
    let choices: Option<Vec<(&str, bool)>> = match field {
        Field::Engine => Some(
            ENGINES
                .iter()
                .enumerate()
                .map(|(i, e)| (*e, i == w.engine))
                .collect(),
        ),
        Field::Key => Some(KEY_KINDS.iter().map(|(k, n)| (*n, *k == w.key)).collect()),
        _ => None,
    };
    if let Some(choices) = choices {
        let mut out = Vec::new();
        let mut used = 0;
        for (name, on) in choices {
            let text = format!("{} {name}  ", if on { "●" } else { "○" });
            let tw = width(&text);
            if used + tw > vw {
                out.push(Span::raw("…"));
                break;
            }
            used += tw;
            let style = if on { theme.focus() } else { theme.dim() };
            out.push(Span::styled(
                text,
                if focused || on { style } else { theme.dim() },
            ));
        }
        return out;
    }
    let typed = w.typed(field);
    let shown: String = if field == Field::Passphrase {
        "*".repeat(typed.chars().count())
    } else {
        typed.to_string()
    };
    if shown.is_empty() && !focused {
        let d = match (field, w.default_of(field)) {
            (_, Some(d)) => format!("{d} (default)"),
            (Field::Jump | Field::Passphrase, None) => "(none)".into(),
            (Field::Target, None) => "e.g. db.internal:5432".into(),
            (Field::Bastion, None) => "e.g. ops@bastion.example.com".into(),
            _ => String::new(),
        };
        return vec![Span::styled(fit(&d, vw).into_owned(), theme.dim())];
    }
    if !focused {
        return vec![Span::raw(fit(&shown, vw).into_owned())];
    }
    // The text with a block cursor at the end; a long one shows its end.
    let room = vw.saturating_sub(1);
    let text = if width(&shown) > room {
        let tail: String = shown
            .chars()
            .rev()
            .scan(0, |n, c| {
                *n += unicode_width::UnicodeWidthChar::width(c).unwrap_or(0);
                (*n < room).then_some(c)
            })
            .collect::<Vec<_>>()
            .into_iter()
            .rev()
            .collect();
        format!("…{tail}")
    } else {
        shown
    };
    let mut out = vec![Span::raw(text), Span::styled("█", theme.accent())];
    if w.typed(field).is_empty()
        && let Some(d) = w.default_of(field)
    {
        let rest = vw.saturating_sub(2);
        out.push(Span::styled(
            fit(&format!(" {d} (default)"), rest).into_owned(),
            theme.dim(),
        ));
    }
    out
}
